"""The escape hatches on real Celery workers, Redis and PostgreSQL: skip a stuck
environment, promote by force; each recorded in the audit trail with who and why, in the
action's own transaction (a refusal records nothing)."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rollout.config import Fault, Fleet
from rollout.domain.audit import Actor
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine import steering
from rollout.engine.freezes import freeze, unfreeze
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import transaction
from rollout.store.models import Event, Rollout, Upgrade
from tests.conftest import Cluster
from tests.integration.test_steering import _final, _ok, _rollout, _upgrades
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
TESTER = Actor.local("tester")
LOCAL = f"local:{getpass.getuser()}"


def _events(cluster: Cluster, rollout_id: int) -> list[tuple[str, str, str | None, str | None]]:
    with transaction(cluster.database_url) as session:
        rows = session.scalars(
            select(Event).where(Event.rollout_id == rollout_id).order_by(Event.id)
        )
        return [(e.action, e.actor, e.reason, e.subject) for e in rows]


def _stuck_in_staging(cluster: Cluster, fleet: Fleet, runtime: Runtime, version: str) -> int:
    """A checkout rollout whose staging-2 is frozen: staging-1 passes, the stage cannot."""
    freeze(runtime, fleet, "staging-2", "1h", "staging-2 is being rebuilt", actor=TESTER)
    rollout_id = submit(runtime, fleet, "checkout", version).rollout_id
    wait_for(
        lambda: _upgrades(cluster, rollout_id)["staging-1"].state == "succeeded",
        60,
        "staging-1 to pass",
    )
    held = _upgrades(cluster, rollout_id)["staging-2"]
    assert held.state == "pending" and "frozen" in (held.hold_reason or ""), held.hold_reason
    assert _rollout(cluster, rollout_id).stage_index == 1
    return rollout_id


def test_skip_leaves_a_stuck_environment_out_and_its_stage_passes(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    rollout_id = _stuck_in_staging(cluster, fleet, runtime, "9.2.0")
    ident = str(rollout_id)

    # What has started cannot be skipped: refused in one line, nothing recorded.
    done = cluster.rollout("skip", ident, "staging-1", "--reason", "too late")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: rollout {rollout_id}: staging-1 is succeeded: only an upgrade not started yet "
        "can be skipped (wait for it to finish, or abort the rollout)"
    )
    unknown = cluster.rollout("skip", ident, "nowhere-9", "--reason", "typo")
    assert unknown.returncode == 1 and "has no upgrade in nowhere-9" in unknown.stderr
    assert _events(cluster, rollout_id) == []

    said = _ok(cluster.rollout("skip", ident, "staging-2", "--reason", "rebuilt next week"))
    assert said.strip() == (
        f"rollout {rollout_id}: staging-2 skipped: rebuilt next week; stage staging passed"
    )
    assert _final(cluster, rollout_id).state == "succeeded"
    upgrades = _upgrades(cluster, rollout_id)
    assert upgrades["staging-2"].state == "skipped"
    assert upgrades["staging-2"].reason == "skipped by operator: rebuilt next week"
    assert upgrades["staging-2"].deploy_started_at is None  # never touched
    assert {upgrades[f"prod-{n}"].state for n in (1, 2, 3)} == {"succeeded"}
    assert _events(cluster, rollout_id) == [("skip", LOCAL, "rebuilt next week", "staging-2")]

    # Once final, nothing may be skipped any more, and nothing more is recorded.
    late = cluster.rollout("skip", ident, "staging-2", "--reason", "again")
    assert late.returncode == 1 and "only a running or paused rollout's" in late.stderr
    assert len(_events(cluster, rollout_id)) == 1


def test_force_promote_moves_on_before_the_stage_passed_and_needs_a_reason(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    rollout_id = _stuck_in_staging(cluster, fleet, runtime, "9.3.0")
    ident = str(rollout_id)

    plain = cluster.rollout("promote", ident)
    assert plain.returncode == 1
    assert "stage staging has not passed: 1 of 2 environments passed" in plain.stderr
    bare = cluster.rollout("promote", ident, "--force")
    assert bare.returncode == 1
    assert bare.stderr.strip() == "error: a forced promotion needs a reason (--reason)"
    with pytest.raises(steering.SteeringRefused, match="needs a reason"):
        steering.promote(runtime, rollout_id, "  ", actor=TESTER, force=True)
    assert _events(cluster, rollout_id) == []
    assert _rollout(cluster, rollout_id).stage_index == 1

    why = "staging-1 is enough, staging-2 is rebuilt"
    said = _ok(cluster.rollout("promote", ident, "--force", "--reason", why))
    assert said.strip() == (
        f"rollout {rollout_id}: stage staging has not passed: 1 of 2 environments passed, "
        "promoted by force; now at stage production"
    )
    wait_for(
        lambda: (
            {_upgrades(cluster, rollout_id)[f"prod-{n}"].state for n in (1, 2, 3)} == {"succeeded"}
        ),
        60,
        "production to upgrade",
    )
    # staging-2 stays frozen, and the rollout waits for it: forcing skipped nobody.
    rollout = _rollout(cluster, rollout_id)
    assert rollout.state == "running" and rollout.stage_index == 2
    assert _upgrades(cluster, rollout_id)["staging-2"].state == "pending"
    assert _events(cluster, rollout_id) == [("force-promote", LOCAL, why, None)]

    unfreeze(runtime, "staging-2", actor=TESTER)
    assert _final(cluster, rollout_id).state == "succeeded"
    assert _upgrades(cluster, rollout_id)["staging-2"].state == "succeeded"


def test_force_promote_of_the_last_stage_is_refused(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    freeze(runtime, fleet, "prod-3", "1h", "prod-3 is on hold", actor=TESTER)
    rollout_id = submit(runtime, fleet, "checkout", "9.4.0").rollout_id
    wait_for(
        lambda: (
            _rollout(cluster, rollout_id).stage_index == 2
            and _upgrades(cluster, rollout_id)["prod-2"].state == "succeeded"
        ),
        60,
        "the rollout to reach production",
    )
    refused = cluster.rollout("promote", str(rollout_id), "--force", "--reason", "ship it")
    assert refused.returncode == 1 and "it is the last stage" in refused.stderr
    assert _events(cluster, rollout_id) == []


def test_the_event_is_written_in_the_actions_transaction(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="checkout", version="9.5.0", deploy_seconds=5.0))
    rollout_id = submit(runtime, fleet, "checkout", "9.5.0").rollout_id
    # An event the database refuses (its token does not exist) takes the pause with it.
    ghost = Actor("token 999999 (gone)", 999999)
    with pytest.raises(IntegrityError):
        steering.pause(runtime, rollout_id, "never happens", actor=ghost)
    with transaction(cluster.database_url) as session:
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None and rollout.state == "running" and rollout.reason is None
        pending = session.scalars(
            select(Upgrade.state).where(Upgrade.rollout_id == rollout_id)
        ).all()
    assert "ready" in pending or "deploying" in pending
    assert _events(cluster, rollout_id) == []

    paused = steering.pause(runtime, rollout_id, "change freeze", actor=TESTER)
    assert paused.changed
    again = steering.pause(runtime, rollout_id, "twice", actor=TESTER)
    assert not again.changed  # changed nothing: recorded nothing
    assert _events(cluster, rollout_id) == [("pause", "local:tester", "change freeze", None)]
    steering.abort(runtime, rollout_id, "clean up", actor=TESTER)
