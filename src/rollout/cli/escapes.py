"""`rollout skip`: an operator's escape hatch for one stuck environment (the other,
`promote --force`, is an option of `promote`)."""

from __future__ import annotations

from typing import Annotated

import typer

from rollout.cli.entry import RolloutId, fail, out, pick_backend, refusals


def skip(
    rollout_id: RolloutId,
    environment: Annotated[str, typer.Argument(help="the environment to leave out")],
    reason: Annotated[str, typer.Option(help="why: recorded on the upgrade and in history")],
) -> None:
    """Leave one stuck environment (its upgrade not started) out of its stage's count, so
    the stage can pass; its upgrade ends skipped."""
    if not reason.strip():
        raise fail("skipping an environment needs a reason (--reason)")
    with refusals():
        done = pick_backend().skip(rollout_id, environment, reason)
    out.print(done.message, highlight=False, soft_wrap=True)
