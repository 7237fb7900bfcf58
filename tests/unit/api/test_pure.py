"""The API's pure parts: token grants, and how refusals are worded."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from rollout.api.schemas import FreezeIn, SteerIn, TeamTokenIn
from rollout.store.tokens import Scope, TokenError, check_grant, hash_secret


@pytest.mark.parametrize(
    ("scope", "services", "team", "message"),
    [
        (Scope.PIPELINE, [], None, "needs the services"),
        (Scope.PIPELINE, ["checkout"], "payments", "drop --team"),
        (Scope.TEAM, [], None, "needs its team"),
        (Scope.TEAM, ["checkout"], "payments", "drop --service"),
        (Scope.OPERATOR, [], "payments", "an operator token sees everything"),
        (Scope.ADMIN, ["checkout"], None, "an admin token sees everything"),
        (Scope.PIPELINE, ["Check out"], None, "malformed name 'Check out'"),
    ],
)
def test_grants_that_make_no_sense(
    scope: Scope, services: list[str], team: str | None, message: str
) -> None:
    with pytest.raises(TokenError, match=message):
        check_grant(scope, services, team)


def test_grants_that_do() -> None:
    check_grant(Scope.PIPELINE, ["checkout", "search-api"], None)
    check_grant(Scope.TEAM, [], "payments")
    check_grant(Scope.ADMIN, [], None)
    check_grant(Scope.AGENT, [], None, ["vault-1", "vault-2"])


@pytest.mark.parametrize(
    ("scope", "services", "team", "environments", "message"),
    [
        (Scope.AGENT, [], None, [], "needs its environment"),
        (Scope.AGENT, ["checkout"], None, ["vault-1"], "drop --service and --team"),
        (Scope.AGENT, [], "payments", ["vault-1"], "drop --service and --team"),
        (Scope.OPERATOR, [], None, ["vault-1"], "only an agent token is bound to environments"),
        (Scope.AGENT, [], None, ["Vault 1"], "malformed name 'Vault 1'"),
    ],
)
def test_agent_grants_that_make_no_sense(
    scope: Scope, services: list[str], team: str | None, environments: list[str], message: str
) -> None:
    with pytest.raises(TokenError, match=message):
        check_grant(scope, services, team, environments)


def test_the_hash_is_sha256_hex() -> None:
    assert hash_secret("rollout_x") == hash_secret("rollout_x")
    assert len(hash_secret("rollout_x")) == 64 and hash_secret("rollout_y") != hash_secret("x")


def test_validation_messages_name_the_field_never_the_input() -> None:
    from rollout.api.errors import validation_message

    errors = [
        {"loc": ("body", "version"), "msg": "String should match pattern", "input": "s3cr3t"},
        {"loc": ("body", "force"), "msg": "Extra inputs", "type": "extra_forbidden"},
        {"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid"},
    ]
    message = validation_message(errors)
    assert message == (
        "body.version: String should match pattern; body.force: unknown field; "
        "body.3: malformed JSON"
    )
    assert "s3cr3t" not in message


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        (TeamTokenIn, {"scope": "team", "team": "payments", "note": "on\x00call"}),
        (SteerIn, {"reason": "\x00"}),
        (FreezeIn, {"target": "prod-1", "until": "2h", "reason": "holiday\x00"}),
    ],
)
def test_a_nul_in_request_text_is_refused_before_the_database_sees_it(
    schema: type[BaseModel], body: dict[str, str]
) -> None:
    # PostgreSQL refuses it with an error the API answered as a 500 (found by the fuzz test).
    with pytest.raises(ValidationError, match="must not contain a NUL character"):
        schema.model_validate(body)
