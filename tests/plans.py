"""Plans and driver specs for tests that write rows by hand: the smallest that fit."""

from __future__ import annotations

from rollout.plan import PagingSpec, Plan
from rollout.plan.driver import SimulatedDriverSpec
from rollout.plan.models import StageSpec, WindowsSpec

SIMULATED = SimulatedDriverSpec(type="simulated", poll_interval_s=1.0, deploy_timeout_s=600.0)


def tiny_plan(team: str = "payments", stages: tuple[str, ...] = ("production",)) -> Plan:
    """One stage (or the named ones) without gates, the team paged through no channel."""
    return Plan(
        version=1,
        stages=tuple(
            StageSpec(
                name=name,
                soak_s=0.0,
                promote_share=1.0,
                parallelism=None,
                parallelism_percent=None,
                severity="P0",
            )
            for name in stages
        ),
        gates=(),
        environments=(),
        paging=PagingSpec(team=team, members=(), rotations=None, escalation=(), channels=()),
        air_gapped=(),
        operations=None,
        artifacts=None,
        windows=WindowsSpec(service=(), environments={}),
        requires=(),
    )
