"""The engine's flows over the stubs: promotion through the stages, failure and rollback,
paging and escalation, steering, supersede, recall and constraints."""

from __future__ import annotations

from datetime import timedelta

from rollout.domain.audit import Actor
from rollout.domain.gates import Outcome
from rollout.domain.holds import HoldKind
from rollout.domain.states import RolloutState, UpgradeState
from rollout.drivers import DeployPhase
from rollout.engine import steering
from rollout.engine.freezes import freeze, unfreeze
from rollout.engine.recall import recall
from rollout.paging.channels import Action
from rollout.testing import DeployScript
from tests.unit.engine.conftest import ENVIRONMENTS, World, fleet_config
from tests.waiting import wait_for

R, U = RolloutState, UpgradeState


TESTER = Actor.local("tester")


def test_a_good_release_goes_through_every_stage_once(world: World) -> None:
    submitted = world.submit("2.0.0")
    world.reaches(submitted.rollout_id, R.SUCCEEDED)
    upgrades = world.upgrades(submitted.rollout_id)
    assert {env: u.state for env, u in upgrades.items()} == {
        env: U.SUCCEEDED for env in ENVIRONMENTS
    }
    assert world.running() == world.installations() == {env: "2.0.0" for env in ENVIRONMENTS}
    # Each deploy took effect once, under its upgrade's key.
    assert set(world.driver.applied.values()) == {1}
    assert set(world.driver.applied) == {f"upgrade-{u.id}" for u in upgrades.values()}
    assert world.pages() == [] and world.channel.received == []


def test_a_failing_gate_rolls_back_halts_and_pages_the_owning_team_once(world: World) -> None:
    world.gate.scripts[("canary-1", "checkout", "2.0.0")] = [Outcome.FAILURE]
    submitted = world.submit("2.0.0")
    rollout = world.reaches(submitted.rollout_id, R.FAILED)
    assert rollout.reason is not None and rollout.reason.startswith("canary-1: ")
    upgrades = world.upgrades(submitted.rollout_id)
    assert upgrades["canary-1"].state == U.ROLLED_BACK
    assert {upgrades[e].state for e in ("staging-1", "prod-1")} == {U.CANCELLED}
    assert world.running() == {env: "1.0.0" for env in ENVIRONMENTS}
    assert world.driver.applied[f"upgrade-{upgrades['canary-1'].id}-rollback"] == 1

    (page,) = world.pages()
    assert (page.team, page.kind, page.environment, page.gate) == (
        "payments",
        "failure",
        "canary-1",
        "health",
    )
    wait_for(lambda: world.channel.received, 30, "the page to reach the channel")
    message, action = world.channel.received[0]
    assert (message.dedup_key, action) == (page.dedup_key, Action.TRIGGER)
    assert "scripted failure" in message.detail


def test_an_unanswered_page_escalates_to_the_secondary(world: World) -> None:
    world.gate.scripts[("canary-1", "checkout", "2.0.0")] = [Outcome.FAILURE]
    submitted = world.submit("2.0.0")
    world.reaches(submitted.rollout_id, R.FAILED)
    wait_for(lambda: len(world.channel.received) >= 2, 30, "the page to escalate")
    (first, _), (escalated, action) = world.channel.received[:2]
    assert escalated.dedup_key == first.dedup_key and action is Action.TRIGGER
    assert None not in (first.recipient, escalated.recipient)
    assert escalated.recipient != first.recipient, "the secondary is someone else"


def test_a_failed_deploy_rolls_back_like_a_failed_gate(world: World) -> None:
    world.driver.script("checkout", "2.0.0", DeployScript(phase=DeployPhase.FAILED, message="boom"))
    submitted = world.submit("2.0.0")
    world.reaches(submitted.rollout_id, R.FAILED)
    assert world.upgrades(submitted.rollout_id)["canary-1"].state == U.ROLLED_BACK
    assert world.running() == {env: "1.0.0" for env in ENVIRONMENTS}
    assert [p.kind for p in world.pages()] == ["failure"]


def test_an_inconclusive_gate_pauses_and_resuming_passes_it(world: World) -> None:
    world.gate.scripts[("canary-1", "checkout", "2.0.0")] = [Outcome.INCONCLUSIVE]
    submitted = world.submit("2.0.0")
    world.reaches(submitted.rollout_id, R.PAUSED)
    upgrades = world.upgrades(submitted.rollout_id)
    assert upgrades["canary-1"].state == U.AWAITING_DECISION
    assert upgrades["staging-1"].hold_kind == HoldKind.PAUSED
    (page,) = world.pages()
    assert (page.kind, page.severity) == ("decision", "P4")

    steering.resume(
        world.runtime, submitted.rollout_id, "expected during the migration", actor=TESTER
    )
    world.reaches(submitted.rollout_id, R.SUCCEEDED)
    assert world.running() == {env: "2.0.0" for env in ENVIRONMENTS}


def test_abort_halts_and_rolls_back_what_waits_for_a_decision(world: World) -> None:
    world.gate.scripts[("canary-1", "checkout", "2.0.0")] = [Outcome.INCONCLUSIVE]
    submitted = world.submit("2.0.0")
    world.reaches(submitted.rollout_id, R.PAUSED)
    steering.abort(world.runtime, submitted.rollout_id, "not today", actor=TESTER)
    world.reaches(submitted.rollout_id, R.FAILED)
    assert world.upgrades(submitted.rollout_id)["canary-1"].state == U.ROLLED_BACK
    assert world.running() == {env: "1.0.0" for env in ENVIRONMENTS}


def test_a_newer_release_supersedes_the_older_rollout(world: World) -> None:
    # The older one's canary deploy is slow: the newer arrives while it is in flight.
    world.driver.script("checkout", "2.0.0", DeployScript(polls=20))
    older = world.submit("2.0.0")
    wait_for(
        lambda: world.upgrades(older.rollout_id)["canary-1"].state == U.DEPLOYING,
        30,
        "the older rollout's canary to deploy",
    )
    newer = world.submit("3.0.0")
    assert newer.superseded == (older.rollout_id,)
    world.reaches(newer.rollout_id, R.SUCCEEDED)
    world.reaches(older.rollout_id, R.SUPERSEDED)
    assert world.running() == world.installations() == {env: "3.0.0" for env in ENVIRONMENTS}


def test_recall_rolls_the_version_off_everywhere_without_a_page(world: World) -> None:
    submitted = world.submit("2.0.0")
    world.reaches(submitted.rollout_id, R.SUCCEEDED)
    recall(world.runtime, "checkout", "2.0.0", "a bad migration", actor=TESTER)
    before = {env: "1.0.0" for env in ENVIRONMENTS}
    # The fleet rolls back first, the record follows in the step's write: wait for both.
    wait_for(
        lambda: world.running() == before and world.installations() == before,
        30,
        "every environment back on 1.0.0, in the fleet and in the record",
    )
    assert world.pages() == []


def test_a_freeze_holds_an_environment_until_it_is_lifted(world: World) -> None:
    freeze(
        world.runtime,
        world.fleet,
        "prod-1",
        world.runtime.now() + timedelta(hours=1),
        "audit",
        actor=TESTER,
    )
    submitted = world.submit("2.0.0")
    held = wait_for(
        lambda: (
            (u := world.upgrades(submitted.rollout_id)["prod-1"]).hold_kind == HoldKind.FREEZE and u
        ),
        30,
        "prod-1 to be held by the freeze",
    )
    assert held.state == U.PENDING and held.hold_subject == "prod-1"
    assert "frozen until" in (held.hold_reason or "")
    unfreeze(world.runtime, "prod-1", actor=TESTER)
    world.reaches(submitted.rollout_id, R.SUCCEEDED)


def test_an_upgrade_waits_for_the_service_it_requires(world: World) -> None:
    world.fleet = fleet_config(requires=["billing-db >= 2.0"])
    submitted = world.submit("2.0.0")
    held = wait_for(
        lambda: (
            (u := world.upgrades(submitted.rollout_id)["canary-1"]).hold_kind == HoldKind.DEPENDENCY
            and u
        ),
        30,
        "checkout to wait for billing-db",
    )
    assert held.hold_subject == "billing-db"
    dependency = world.submit("2.0.0", service="billing-db")
    world.reaches(dependency.rollout_id, R.SUCCEEDED)
    # Woken by billing-db's installation, not by polling: well before the 30 s recheck.
    world.reaches(submitted.rollout_id, R.SUCCEEDED, timeout=30)
