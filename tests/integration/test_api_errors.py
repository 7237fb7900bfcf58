"""The API's answers to a caller's mistakes, in process on the real PostgreSQL: an id that
cannot be a row is a 422 (never a 500 from the driver), and a detail quotes no input whole."""

from __future__ import annotations

import pytest

from tests.integration.test_api import DIGEST, World, api_database_url, world

pytestmark = pytest.mark.integration
__all__ = ["api_database_url", "world"]  # the fixtures, shared with the API's tests

TEN_KB = "x" * 10_000
ID_ROUTES = [
    ("GET", "/v1/rollouts/{id}"),
    ("POST", "/v1/rollouts/{id}/pause"),
    ("POST", "/v1/rollouts/{id}/resume"),
    ("POST", "/v1/rollouts/{id}/abort"),
    ("POST", "/v1/rollouts/{id}/retry"),
    ("POST", "/v1/rollouts/{id}/promote"),
    ("POST", "/v1/pages/{id}/acknowledge"),
    ("POST", "/v1/pages/{id}/resolve"),
    ("POST", "/v1/tokens/{id}/revoke"),
    ("GET", "/v1/pages?rollout_id={id}"),
]


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
@pytest.mark.parametrize("value", [2**31, 2**64, 0, -1])
def test_an_id_that_cannot_be_a_row_is_422(
    world: World, method: str, path: str, value: int
) -> None:
    response = world.call(method, path.format(id=value), "admin")
    assert response.status_code == 422, response.text
    assert "_id" in response.json()["detail"]


def test_the_largest_id_is_looked_up(world: World) -> None:
    response = world.call("GET", f"/v1/rollouts/{2**31 - 1}", "operator")
    assert response.status_code == 404
    assert response.json()["detail"] == f"no rollout {2**31 - 1}"


def test_details_quote_no_input_whole(world: World) -> None:
    field = world.call("POST", "/v1/releases", "pipeline", {"service": "checkout", TEN_KB: 1})
    assert field.status_code == 422 and "unknown field" in field.json()["detail"]
    query = world.call("GET", f"/v1/rollouts?{TEN_KB}=1", "operator")
    assert query.status_code == 422 and "unknown query parameter" in query.json()["detail"]
    version = world.call(
        "POST", "/v1/releases", "pipeline", {"service": "checkout", "version": TEN_KB}
    )
    assert version.status_code == 422
    for response in (field, query, version):
        detail = response.json()["detail"]
        assert len(detail) < 300 and TEN_KB[:100] not in detail, detail


def test_a_digest_added_on_resubmission_is_409(world: World) -> None:
    first = world.call(
        "POST", "/v1/releases", "pipeline", {"service": "checkout", "version": "7.0.0"}
    )
    assert first.status_code == 201, first.text
    again = world.call(
        "POST",
        "/v1/releases",
        "pipeline",
        {"service": "checkout", "version": "7.0.0", "digest": DIGEST},
    )
    assert again.status_code == 409
    assert "checkout 7.0.0 was already submitted without a digest" in again.json()["detail"]
    same = world.call(
        "POST", "/v1/releases", "pipeline", {"service": "checkout", "version": "7.0.0"}
    )
    assert same.status_code == 200 and same.json()["rollout_id"] == first.json()["rollout_id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/teams/payments/oncall?at=0001-01-01T00:00:00%2B23:59", None),
        ("GET", "/v1/teams/payments/oncall?at=9999-12-31T23:59:59-23:59", None),
        (
            "POST",
            "/v1/teams/payments/overrides",
            {
                "member": "Ada Park",
                "starts_at": "0001-01-01T00:00:00+23:59",
                "ends_at": "9999-12-31T23:59:59-23:59",
            },
        ),
    ],
)
def test_a_time_out_of_range_is_4xx(world: World, method: str, path: str, body: object) -> None:
    response = world.call(method, path, "admin", body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
