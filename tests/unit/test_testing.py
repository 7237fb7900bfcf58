"""The stubs of rollout.testing behave as the real backends they stand in for."""

from __future__ import annotations

from datetime import UTC, datetime

from rollout.domain.gates import Outcome
from rollout.drivers import DeployPhase, DeployRequest, Health
from rollout.paging.channels import Action, RetryableDeliveryError
from rollout.testing import DeployScript, InMemoryDriver, RecordingChannel, ScriptedGate

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def test_the_in_memory_driver_folds_a_repeated_key_into_one_deploy() -> None:
    driver = InMemoryDriver({("prod-1", "checkout"): "1.0.0"})
    driver.script("checkout", "2.0.0", DeployScript(polls=1))
    request = DeployRequest("upgrade-1", "prod-1", "checkout", "2.0.0")
    driver.start(request)
    driver.start(request)
    assert driver.status("upgrade-1").phase is DeployPhase.RUNNING
    assert driver.status("upgrade-1").phase is DeployPhase.SUCCEEDED
    assert driver.status("upgrade-1").phase is DeployPhase.SUCCEEDED
    assert (driver.starts["upgrade-1"], driver.applied["upgrade-1"]) == (2, 1)
    assert driver.installed == {("prod-1", "checkout"): "2.0.0"}
    assert driver.status("upgrade-2").phase is DeployPhase.UNKNOWN


def test_the_in_memory_driver_reports_scripted_failures_and_health() -> None:
    driver = InMemoryDriver({("prod-1", "checkout"): "1.0.0"})
    driver.script("checkout", "2.0.0", DeployScript(phase=DeployPhase.FAILED, message="no"))
    driver.start(DeployRequest("upgrade-1", "prod-1", "checkout", "2.0.0"))
    assert driver.status("upgrade-1") == driver.statuses(["upgrade-1"])["upgrade-1"]
    assert driver.status("upgrade-1").message == "no"
    assert driver.installed[("prod-1", "checkout")] == "1.0.0"
    driver.unhealthy.add(("checkout", "1.0.0"))
    assert driver.health("prod-1", "checkout") is Health.UNHEALTHY
    assert driver.health("prod-2", "checkout") is Health.UNKNOWN


def test_a_scripted_gate_takes_its_outcomes_in_turn_and_repeats_the_last() -> None:
    gate = ScriptedGate({("prod-1", "checkout", "2.0.0"): [Outcome.ERROR, Outcome.FAILURE]})
    taken = [gate.measure("prod-1", "checkout", "2.0.0", NOW).outcome for _ in range(3)]
    assert taken == [Outcome.ERROR, Outcome.FAILURE, Outcome.FAILURE]
    assert gate.measure("prod-2", "checkout", "2.0.0", NOW).outcome is Outcome.SUCCESS


def test_a_recording_channel_refuses_as_told_then_keeps_what_it_gets() -> None:
    channel = RecordingChannel(refusals=1)
    message = object()
    try:
        channel.deliver(message, Action.TRIGGER)  # type: ignore[arg-type]
    except RetryableDeliveryError:
        pass
    else:
        raise AssertionError("the first attempt was to be refused")
    channel.deliver(message, Action.TRIGGER)  # type: ignore[arg-type]
    assert (channel.attempts, channel.received) == (2, [(message, Action.TRIGGER)])
