"""How a message quotes input: short values as they are, long ones cut with an ellipsis, a
URL's password masked however malformed the URL."""

from __future__ import annotations

import pytest

from rollout.quoting import ECHO_MAX, cut, cut_quoted, masked_url, quoted


def test_a_short_value_is_quoted_whole() -> None:
    assert quoted("checkout") == "'checkout'"
    assert quoted("") == "''"
    assert quoted(42) == "42"


def test_a_long_value_is_cut_to_the_limit_with_an_ellipsis() -> None:
    shown = quoted("1" * 10_000)
    assert shown == "'" + "1" * (ECHO_MAX - 1) + "…'"
    assert cut("x" * ECHO_MAX) == "x" * ECHO_MAX


def test_only_the_quoted_parts_of_a_message_are_cut() -> None:
    message = f"unknown state '{'s' * 500}' (one of: running, paused)"
    assert cut_quoted(message) == f"unknown state '{'s' * 79}…' (one of: running, paused)"
    assert cut_quoted("no rollout 7") == "no rollout 7"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://rollout:hunter2@db/x", "postgresql+psycopg://rollout:***@db/x"),
        ("postgresql+psycopg//rollout:hunter2@db/x", "postgresql+psycopg//rollout:***@db/x"),
        ("postgresql://rollout:p@ss@db/x", "postgresql://rollout:***@db/x"),
        (
            "postgresql://db/x?password=hunter2&sslmode=on",
            "postgresql://db/x?password=***&sslmode=on",
        ),
        ("sqlite:////var/lib/rollout/rollout.db", "sqlite:////var/lib/rollout/rollout.db"),
        ("not-a-url", "not-a-url"),
    ],
)
def test_a_url_password_is_masked(url: str, shown: str) -> None:
    assert masked_url(url) == shown
