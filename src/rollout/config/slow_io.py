"""Waits in the config longer than the lease: allowed, and said by `rollout config validate`.

A step or a delivery renews its row's lease for as long as its I/O runs, so a timeout past
the lease no longer gets a page sent twice or a measurement dropped; it does mean a worker
may wait on that one receiver, judge or agent longer than the lease, which is worth
knowing. The air-gapped entry check is left out: its row is taken for the whole of its
fetch and scan timeouts at once, and those are minutes by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from rollout.config.environments import CommandDriver, HttpDriver
from rollout.config.fleet import Fleet
from rollout.config.gates import SoakGate
from rollout.durations import format_duration


def longer_than_lease(fleet: Fleet, lease: timedelta) -> list[str]:
    """One warning per timeout longer than `lease` (ROLLOUT_LEASE_SECONDS), naming where."""
    return [
        f"{where}: {name} {format_duration(wait)} is longer than the lease "
        f"(ROLLOUT_LEASE_SECONDS, {format_duration(lease)}); its {what} renews the lease "
        "while it waits, and holds a worker that long"
        for where, name, wait, what in _waits(fleet)
        if wait > lease
    ]


def _waits(fleet: Fleet) -> Iterator[tuple[str, str, timedelta, str]]:
    """(where, which setting, how long, whose wait) for every wait a step or send makes."""
    for t, team in enumerate(fleet.teams):
        for c, spec in enumerate(team.channels):
            yield f"teams[{t}].channels[{c}]", "timeout", spec.timeout, "page delivery"
    for e, environment in enumerate(fleet.environments):
        driver = environment.driver
        if isinstance(driver, HttpDriver) and driver.mode == "push":
            yield f"environments[{e}].driver", "request_timeout", driver.request_timeout, "step"
        if isinstance(driver, CommandDriver) and driver.health is not None:
            yield f"environments[{e}].driver", "health_timeout", driver.health_timeout, "step"
    for s, service in enumerate(fleet.services):
        for g, gate in enumerate(service.gates):
            if not isinstance(gate, SoakGate):
                yield f"services[{s}].gates[{g}]", "timeout", gate.timeout, "measurement"
