"""Commands about rollouts: submit a release, list and show rollouts, steer one, recall."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollout.api.schemas import RolloutList, RolloutSummary
from rollout.cli.entry import ConfigOption, RolloutId, fail, out, pick_backend, refusals
from rollout.cli.output import Format, OutputOption, emit
from rollout.cli.status import DEFAULT_TIMEOUT, TimeoutOption, WatchOption

if TYPE_CHECKING:
    from rollout.cli.backend import Steering


def submit(
    service: Annotated[str, typer.Argument(help="the service to release")],
    version: Annotated[str, typer.Argument(help="the new version")],
    digest: Annotated[str | None, typer.Option(help="artifact digest, sha256:<64 hex>")] = None,
    config: ConfigOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="then wait as `rollout status --wait` (exit codes too)")
    ] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Submit a release; it rolls out through the stages (through the API when
    ROLLOUT_API_URL and ROLLOUT_TOKEN are set). With --wait, exit as `rollout status`."""
    from rollout.cli.status import report, timeout_of
    from rollout.observability import setup

    waiting = timeout_of(timeout) if wait else None

    # The rollout's trace starts here when OTEL_* asks (through the API: in its header);
    # the SDK sends what it holds when the process exits.
    setup("cli", log_format=None)
    backend = pick_backend(config)
    with refusals():
        result = backend.submit(service, version, digest)
    if result.created:
        out.print(f"submitted {service} {version}: rollout {result.rollout_id}", highlight=False)
        for old in result.superseded:
            out.print(f"rollout {old} superseded", highlight=False)
    else:
        out.print(
            f"{service} {version} was already submitted: rollout {result.rollout_id}",
            highlight=False,
        )
    if waiting is not None:
        report(backend, result.rollout_id, waiting, wait=True, watch=False, output=Format.TABLE)


def list_(
    service: Annotated[str | None, typer.Option(help="only this service")] = None,
    state: Annotated[str | None, typer.Option(help="only rollouts in this state")] = None,
    stage: Annotated[str | None, typer.Option(help="only rollouts now at this stage")] = None,
    team: Annotated[str | None, typer.Option(help="only this team's rollouts")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    output: OutputOption = Format.TABLE,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="redraw; ends when every one listed is final")
    ] = False,
) -> None:
    """List rollouts, newest first."""
    from rollout.cli.render import rollouts_table
    from rollout.cli.status import watch_list
    from rollout.domain.states import RolloutState

    if state is not None and state not in {s.value for s in RolloutState}:
        raise fail(f"unknown state {state!r} (one of: {', '.join(s.value for s in RolloutState)})")
    backend = pick_backend()

    def read() -> list[RolloutSummary]:
        return backend.list_rollouts(
            service=service, state=state, stage=stage, team=team, limit=limit
        )

    if watch:
        watch_list(read, output)
        return
    with refusals():
        rows = read()
    emit(RolloutList(rollouts=rows), output, lambda wide: rollouts_table(rows, wide))


def show(
    rollout_id: RolloutId,
    all_: Annotated[
        bool, typer.Option("--all", help="every environment and message, done ones too")
    ] = False,
    output: OutputOption = Format.TABLE,
    watch: WatchOption = False,
) -> None:
    """Show a rollout: a summary per stage, the gates, then the environments not done
    (succeeded, cancelled, superseded are done) and why each waits. With --watch, redrawn
    until it is final; then exit as `rollout status`."""
    from rollout.cli.render import rollout_story
    from rollout.cli.status import watch_story

    if watch:
        watch_story(rollout_id, output, everything=all_)
        return
    with refusals():
        view = pick_backend().show_rollout(rollout_id)
    emit(view, output, lambda wide: rollout_story(view, everything=all_))


def _steer(
    rollout_id: int, action: Steering, reason: str | None, config: Path | None = None
) -> None:
    """Pause, resume, abort, retry or promote a rollout; print what happened in one line, or
    refuse in one line with a non-zero exit."""
    with refusals():
        done = pick_backend(config).steer(rollout_id, action, reason)
    out.print(done.message, highlight=False, soft_wrap=True)


Reason = Annotated[str | None, typer.Option(help="why: recorded on the rollout")]


def pause(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Pause a running rollout: nothing new starts, upgrades in flight finish."""
    _steer(rollout_id, "pause", reason)


def resume(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Resume a paused rollout; upgrades awaiting a decision (an inconclusive gate) pass."""
    _steer(rollout_id, "resume", reason)


def abort(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Halt a rollout like a failure; upgrades awaiting a decision roll back; no page."""
    _steer(rollout_id, "abort", reason)


def retry(rollout_id: RolloutId, config: ConfigOption = None) -> None:
    """Roll a failed rollout's release out again, planned from the current config."""
    _steer(rollout_id, "retry", None, config)


def promote(
    rollout_id: RolloutId,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="even if the stage has not passed: skip its gates and soak left"
        ),
    ] = False,
    reason: Reason = None,
) -> None:
    """Skip the rest of the current stage's soak, once the stage has passed; with --force
    (and --reason), move to the next stage now even if it has not."""
    if not force:
        _steer(rollout_id, "promote", reason)
        return
    if reason is None or not reason.strip():
        raise fail("a forced promotion needs a reason (--reason)")
    with refusals():
        done = pick_backend().force_promote(rollout_id, reason)
    out.print(done.message, highlight=False, soft_wrap=True)


def recall(
    service: Annotated[str, typer.Argument(help="the service")],
    version: Annotated[str, typer.Argument(help="the version to recall")],
    reason: Annotated[str | None, typer.Option(help="why; recorded and shown")] = None,
) -> None:
    """Recall a release: no new upgrade to it anywhere; where it runs, roll off to the last
    good version at once (no gates, no ramp)."""
    with refusals():
        recalled = pick_backend().recall(service, version, reason)
    out.print(recalled.message, highlight=False)
