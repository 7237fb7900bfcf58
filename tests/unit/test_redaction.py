"""The scrubbing rule: what it hides, and what it leaves readable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout.observability import redaction
from rollout.secrets import SecretRef


@pytest.fixture(autouse=True)
def no_secret_read() -> Iterator[None]:
    redaction.forget_all()
    yield
    redaction.forget_all()


def test_a_secret_url_read_from_a_reference_shows_only_its_scheme_and_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    monkeypatch.setenv("TEAM_HOOK", hook)
    assert SecretRef(env="TEAM_HOOK").resolve() == hook
    assert redaction.text(f"POST {hook} failed") == "POST https://hooks.slack.com/… failed"
    # A request target holds only the path: the path alone gives the secret away too.
    assert "XXXXSECRET" not in redaction.text("/services/T000/B000/XXXXSECRET")


def test_a_secret_that_is_no_url_is_hidden_whole() -> None:
    redaction.remember("routing-key-0123456789")
    assert redaction.text("key routing-key-0123456789 refused") == "key *** refused"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("http://bob:hunter2@gate.example/q", "http://***@gate.example/q"),
        (
            "GET /v1/rollouts?limit=5&token=abc123 HTTP/1.1",
            "GET /v1/rollouts?limit=5&token=*** HTTP/1.1",
        ),
        (
            "https://x.example/p?api_key=k&team=search",
            "https://x.example/p?api_key=***&team=search",
        ),
        ("access_token=abc", "access_token=***"),
        ("GET /v1/pages?team=search&limit=10", "GET /v1/pages?team=search&limit=10"),
        ("gate health on canary-1: failure", "gate health on canary-1: failure"),
    ],
)
def test_credentials_and_token_ish_parameters_go_the_rest_stays(written: str, shown: str) -> None:
    assert redaction.text(written) == shown


def test_a_secret_that_only_looks_like_a_url_is_hidden_whole() -> None:
    redaction.remember("http://[broken/with-a-secret")
    redaction.remember("https://user:pw@hooks.example:8443/T1/secret-part")
    assert redaction.text("x http://[broken/with-a-secret y") == "x *** y"
    shown = redaction.text("to https://user:pw@hooks.example:8443/T1/secret-part")
    assert shown == "to https://hooks.example:8443/…"
