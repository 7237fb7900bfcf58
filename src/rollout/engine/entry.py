"""Air-gapped entry, applied to rows: before the first deploy of an upgrade into an
air-gapped environment, its artifact's digest is checked and its scanner run, once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from rollout import artifacts
from rollout.domain.entry import (
    EntryVerdict,
    Fetched,
    Scanned,
    TemplateError,
    artifact_path,
    artifact_url,
    judge,
    needs_scan,
    scanner_argv,
)
from rollout.domain.states import UpgradeState
from rollout.engine.progress import lock_rollout
from rollout.engine.runtime import Runtime
from rollout.plan import ArtifactsSpec
from rollout.store.database import is_postgresql, reading, transaction
from rollout.store.models import ArtifactCheck, Release, Rollout, Upgrade

log = logging.getLogger(__name__)
# An artifact store that failed for now is asked again no sooner than this.
RETRY_PAUSE = timedelta(seconds=5)


def admit(
    runtime: Runtime, upgrade: Upgrade, rollout: Rollout, claim: int
) -> tuple[int, str | None] | None:
    """Check an upgrade's artifact if it is bound for an air-gapped environment: the claim
    to go on with and, if it must not enter, why; None when the claim went stale."""
    spec = rollout.plan.artifacts
    if spec is None or upgrade.environment not in rollout.plan.air_gapped:
        return claim, None
    with reading(runtime.database_url) as session:
        done = session.get(ArtifactCheck, upgrade.id)
        release = session.get(Release, rollout.release_id)
        verdict = None if done is None else (done.admitted, done.reason)
        expected = release.digest if release is not None else None
    if verdict is not None:
        # Checked already (a redelivered step, or one after a crash): the verdict stands.
        admitted, reason = verdict
        return claim, None if admitted else reason

    budget = timedelta(seconds=spec.timeout_s + _scan_timeout(spec)) + runtime.lease
    taken = _take_for_check(runtime, upgrade, claim, runtime.now() + budget)
    if taken is None:
        return None
    try:
        result, digest, size, scanned, output = _check(spec, upgrade, expected)
    except Exception as error:  # unreachable for now (a 503, a reset): not a verdict
        log.warning("upgrade %s: artifact check failed: %s", upgrade.id, error)
        _retry_later(runtime, upgrade, taken, f"retrying the artifact check: {error}")
        return None
    return _record(runtime, upgrade, taken, result, digest, size, scanned, output)


def _scan_timeout(spec: ArtifactsSpec) -> float:
    return spec.scanner.timeout_s if spec.scanner is not None else 0.0


def _take_for_check(runtime: Runtime, upgrade: Upgrade, claim: int, until: datetime) -> int | None:
    """Push the row's lease past the longest the check may take, so that the ticker does not
    hand the same upgrade to a second worker while this one still reads or scans."""
    with transaction(runtime.database_url) as session:
        taken = session.execute(
            update(Upgrade)
            .where(
                Upgrade.id == upgrade.id,
                Upgrade.claim == claim,
                Upgrade.state == UpgradeState.READY,
            )
            .values(claim=claim + 1, due_at=until)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
    return claim + 1


def _retry_later(runtime: Runtime, upgrade: Upgrade, claim: int, reason: str) -> None:
    """Hand the row back to the ticker after a pause, instead of after the whole lease."""
    pause = upgrade.driver.poll_interval
    with transaction(runtime.database_url) as session:
        session.execute(
            update(Upgrade)
            .where(Upgrade.id == upgrade.id, Upgrade.claim == claim)
            .values(due_at=runtime.now() + max(pause, RETRY_PAUSE), reason=reason)
        )


def _check(
    spec: ArtifactsSpec, upgrade: Upgrade, expected: str | None
) -> tuple[EntryVerdict, str | None, int | None, Scanned | None, str | None]:
    """The I/O, outside any transaction: read the artifact through sha256, then scan it."""
    if expected is None:
        return judge(None, Fetched(), None), None, None, None, None
    values = {
        "service": upgrade.service,
        "version": upgrade.to_version,
        "environment": upgrade.environment,
        "digest": expected or "",
    }
    try:
        if spec.path is not None:
            location = artifact_path(spec.path, values)
        else:
            assert spec.url is not None  # the config gives one of the two
            location = artifact_url(spec.url, values)
    except TemplateError as error:
        return EntryVerdict(False, f"artifact blocked: {error}"), None, None, None, None
    scanner = spec.scanner
    with artifacts.fetch(location, spec.max_bytes, spec.timeout_s) as local:
        fetched = local.fetched
        scanned: Scanned | None = None
        output: str | None = None
        if scanner is not None and needs_scan(expected, fetched) and local.file is not None:
            argv = scanner_argv(scanner.command, {**values, "artifact": str(local.file)})
            scanned, output = artifacts.scan(argv, scanner.timeout_s)
    result = judge(expected, fetched, scanned)
    digest = None if fetched.sha256 is None else f"sha256:{fetched.sha256}"
    size = fetched.size if fetched.missing is None else None
    return result, digest, size, scanned, output


def _record(
    runtime: Runtime,
    upgrade: Upgrade,
    claim: int,
    result: EntryVerdict,
    digest: str | None,
    size: int | None,
    scanned: Scanned | None,
    output: str | None,
) -> tuple[int, str | None] | None:
    """Write the verdict if the claim is still ours (the rollout first: one lock order)."""
    now = runtime.now()
    with transaction(runtime.database_url) as session:
        rollout = lock_rollout(session, upgrade.rollout_id, runtime.database_url)
        row = session.get(Upgrade, upgrade.id, with_for_update=is_postgresql(runtime.database_url))
        if rollout is None or row is None or row.claim != claim or row.state != UpgradeState.READY:
            return None  # halted, paused or re-driven meanwhile: this check counts for nothing
        session.add(
            ArtifactCheck(
                upgrade_id=upgrade.id,
                admitted=result.admitted,
                reason=result.reason,
                digest=digest,
                size=size,
                scanner_exit=None if scanned is None else scanned.exit_code,
                scanner_output=output,
                checked_at=now,
            )
        )
        row.claim += 1
        row.due_at = now + runtime.lease
        new_claim = row.claim
    log.info("upgrade %s: %s", upgrade.id, result.reason)
    return new_claim, None if result.admitted else result.reason
