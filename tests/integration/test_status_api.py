"""The status endpoints on PostgreSQL: the verdict in the body, a long poll that answers at
once when settled and at the wait's end otherwise, durations checked, and the event stream."""

from __future__ import annotations

import json
import time

from tests.integration.test_api import World, api_database_url, world

__all__ = ["api_database_url", "world"]  # the fixtures, shared with the API tests


def test_the_status_says_where_a_rollout_is_and_the_long_poll_waits_for_it(world: World) -> None:
    checkout = world.rollouts["checkout"]
    now = world.call("GET", f"/v1/rollouts/{checkout}/status", "pipeline")
    assert now.status_code == 200, now.text
    body = now.json()
    assert (body["service"], body["state"], body["final"]) == ("checkout", "running", False)
    assert body["verdict"]["exit_code"] == 2 and not body["verdict"]["settled"]
    assert body["holds"][0]["kind"] == "stage" and body["holds"][0]["clears_at"] is None

    # Nothing moves the rollout here (no workers): a long poll answers at the wait's end.
    started = time.monotonic()
    waited = world.call("GET", f"/v1/rollouts/{checkout}/status?wait=1s&within=1m", "pipeline")
    assert waited.status_code == 200
    assert 1 <= time.monotonic() - started < 10
    assert waited.json()["verdict"]["exit_code"] == 2

    by_release = world.call("GET", "/v1/releases/checkout/1.1.0/status", "payments")
    assert by_release.json()["id"] == checkout
    missing = world.call("GET", "/v1/releases/checkout/9.9.9/status", "pipeline")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no rollout of checkout 9.9.9"}
    assert world.call("GET", "/v1/rollouts/999/status", "operator").status_code == 404


def test_a_settled_rollout_answers_a_long_poll_at_once_and_ends_its_stream(world: World) -> None:
    search = world.rollouts["search-api"]
    aborted = world.call("POST", f"/v1/rollouts/{search}/abort", "operator", {"reason": "bad"})
    assert aborted.status_code == 200, aborted.text

    started = time.monotonic()
    answer = world.call("GET", f"/v1/rollouts/{search}/status?wait=30s", "search")
    assert time.monotonic() - started < 10, "a settled rollout is not waited for"
    verdict = answer.json()["verdict"]
    assert verdict == {
        "exit_code": 1,
        "outcome": "failed",
        "why": "failed: aborted by operator: bad",
        "settled": True,
    }

    headers = {"Authorization": f"Bearer {world.tokens['operator']}"}
    with world.client.stream("GET", f"/v1/rollouts/{search}/events", headers=headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = list(stream.iter_lines())
    events = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data:")]
    assert len(events) == 1 and events[0] == answer.json()
    assert "event: status" in lines


def test_malformed_durations_are_one_line_422s(world: World) -> None:
    checkout = world.rollouts["checkout"]
    for query, name in (("wait=soon", "wait"), ("within=-5m", "within")):
        refused = world.call("GET", f"/v1/rollouts/{checkout}/status?{query}", "operator")
        assert refused.status_code == 422, query
        # Refused by the parameter's pattern (query.NAME) or, past it, by the parser (NAME).
        assert refused.json()["detail"].startswith((f"{name}: ", f"query.{name}: ")), refused.text
        assert "\n" not in refused.json()["detail"]
    events = world.call("GET", f"/v1/rollouts/{checkout}/events?wait=x", "operator")
    assert events.status_code == 422
