"""Air-gapped entry on real workers, Redis and PostgreSQL: a verified artifact enters and the
rollout goes on; a tampered one, or one the scanner objects to, is blocked before any deploy,
the rollout halts, and the owning team and the NOC are paged. The check runs once."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from rollout.config import Fleet
from rollout.drivers.simulated import SimulatedFleet, simulated_fleet
from rollout.engine.backends import Backends
from rollout.engine.entry import admit
from rollout.engine.runtime import Runtime
from rollout.engine.steps import step
from rollout.engine.submission import submit
from rollout.store.database import transaction
from rollout.store.models import ArtifactCheck, Release, Rollout, Upgrade
from tests.conftest import FIXTURES, Cluster, PageReceiver, fresh_database
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

# What the artifact holds: it must never reach a page.
PAYLOAD = b"TOP-SECRET-PAYLOAD " * 1000
FINAL = {"succeeded", "failed", "superseded"}


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class Scanner:
    """A scanner script: records each run's arguments, prints, exits as its mode says."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.script = tmp_path / "scanner.py"
        self.log = tmp_path / "scans.jsonl"
        self.script.write_text(
            "import json, sys\n"
            "mode, log = sys.argv[1], sys.argv[2]\n"
            "with open(log, 'a') as out:\n"
            "    out.write(json.dumps(sys.argv[3:]) + '\\n')\n"
            "if mode == 'finding':\n"
            "    print('CVE-2026-0001 critical in libfoo 1.2')\n"
            "    sys.exit(1)\n"
            "print('scanned', sys.argv[3], 'clean')\n"
        )
        self.command = [
            sys.executable,
            str(self.script),
            mode,
            str(self.log),
            "{artifact}",
            "{version}",
        ]

    def runs(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def _fleet(artifacts: dict[str, Any]) -> Fleet:
    """The fixture fleet (canary-1 air-gapped) with an artifacts location of the test's."""
    raw = yaml.safe_load((FIXTURES / "fleet.yaml").read_text())
    raw["artifacts"] = artifacts
    return Fleet.model_validate(raw)


def _store(tmp_path: Path) -> Path:
    # Shell metacharacters in the artifact's own path: the scanner gets it as one argument.
    store = tmp_path / "store $(touch pwned) ; 'q' \"d\" `touch pwned`"
    store.mkdir()
    return store


def _rollout(database_url: str, rollout_id: int) -> Rollout:
    with transaction(database_url) as session:
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        return rollout


def _final(cluster: Cluster, rollout_id: int) -> Rollout:
    return wait_for(
        lambda: (r := _rollout(cluster.database_url, rollout_id)).state in FINAL and r,
        90,
        f"rollout {rollout_id} to finish",
    )


def _upgrades(database_url: str, rollout_id: int) -> dict[str, Upgrade]:
    with transaction(database_url) as session:
        rows = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id))
        return {u.environment: u for u in rows}


def _checks(database_url: str) -> list[ArtifactCheck]:
    with transaction(database_url) as session:
        return list(session.scalars(select(ArtifactCheck)))


def test_a_verified_artifact_enters_and_the_rollout_proceeds(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime, tmp_path: Path
) -> None:
    store, scanner = _store(tmp_path), Scanner(tmp_path, "clean")
    version = "7.1.0+build.3"
    (store / f"checkout-{version}.tar").write_bytes(PAYLOAD)
    fleet = _fleet(
        {"path": f"{store}/{{service}}-{{version}}.tar", "scanner": {"command": scanner.command}}
    )
    submitted = submit(runtime, fleet, "checkout", version, _digest(PAYLOAD))

    assert _final(cluster, submitted.rollout_id).state == "succeeded"
    upgrades = _upgrades(cluster.database_url, submitted.rollout_id)
    assert {u.state for u in upgrades.values()} == {"succeeded"}
    # Checked once, and only where it enters an air-gapped environment.
    [check] = _checks(cluster.database_url)
    assert check.upgrade_id == upgrades["canary-1"].id
    assert (check.admitted, check.digest, check.size) == (True, _digest(PAYLOAD), len(PAYLOAD))
    assert check.scanner_exit == 0 and check.scanner_output is not None
    assert "clean" in check.scanner_output
    assert scanner.runs() == [[f"{store}/checkout-{version}.tar", version]]
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()


class _ArtifactStore:
    """An artifact store over HTTP on loopback, answering GETs from a table of paths."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                store.requests.append(self.path)
                body = store.files.get(self.path.split("?")[0])
                self.send_response(404 if body is None else 200)
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_downloaded_artifact_is_hashed_and_scanned_as_downloaded(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime, tmp_path: Path
) -> None:
    store, scanner = _ArtifactStore(), Scanner(tmp_path, "clean")
    try:
        store.files["/checkout/7.6.0.tar"] = PAYLOAD
        url = f"{store.url}/{{service}}/{{version}}.tar?token=s3cret"
        fleet = _fleet({"url": url, "scanner": {"command": scanner.command}})
        submitted = submit(runtime, fleet, "checkout", "7.6.0", _digest(PAYLOAD))
        assert _final(cluster, submitted.rollout_id).state == "succeeded"
    finally:
        store.server.shutdown()
    assert store.requests == ["/checkout/7.6.0.tar?token=s3cret"]  # once, for canary-1
    [check] = _checks(cluster.database_url)
    assert (check.admitted, check.digest) == (True, _digest(PAYLOAD))
    # The scanner saw a private copy of the download, gone once the check was done.
    [[copy, version]] = scanner.runs()
    assert version == "7.6.0" and "rollout-artifact-" in copy
    assert not Path(copy).exists()


def _blocked(
    cluster: Cluster, rollout_id: int, simulator: SimulatedFleet, page_receiver: PageReceiver
) -> tuple[Upgrade, dict[str, Any], str]:
    """The common story of a blocked upgrade: nothing deployed, the rollout failed, the
    owning team and the NOC paged with the reason and nothing of the artifact."""
    rollout = _final(cluster, rollout_id)
    assert rollout.state == "failed"
    upgrades = _upgrades(cluster.database_url, rollout_id)
    blocked = upgrades["canary-1"]
    assert blocked.state == "blocked" and blocked.reason is not None
    assert blocked.deploy_started_at is None
    assert {u.state for e, u in upgrades.items() if e != "canary-1"} == {"cancelled"}
    assert f"upgrade-{blocked.id}" not in simulator.deploy_records()
    assert rollout.reason == f"canary-1: {blocked.reason}"
    with transaction(cluster.database_url) as session:
        release = session.get(Release, rollout.release_id)
        assert release is not None and release.state == "failed"

    key = f"rollout-{rollout_id}/entry/canary-1"
    [page] = wait_for(lambda: page_receiver.pages(key), 30, "the owning team's page")
    assert (page["team"], page["kind"], page["environment"]) == ("payments", "blocked", "canary-1")
    assert page["detail"] == blocked.reason
    assert "Nothing was deployed" in page["summary"]
    [noc] = wait_for(lambda: page_receiver.pages(f"{key}/noc"), 30, "the NOC's page")
    assert noc["team"] == "noc" and noc["detail"] == blocked.reason
    for body in (page, noc):
        assert "TOP-SECRET-PAYLOAD" not in json.dumps(body)

    shown = cluster.rollout("show", str(rollout_id))
    assert shown.returncode == 0, shown.stderr
    # The table of the halted stage says which upgrade is blocked, and why.
    assert "canary-1 │ blocked" in " ".join(shown.stdout.split())
    return blocked, page, " ".join(shown.stdout.split())


def test_a_tampered_artifact_is_blocked_and_pages(
    cluster: Cluster,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
    tmp_path: Path,
) -> None:
    page_receiver.reset()
    store, scanner = _store(tmp_path), Scanner(tmp_path, "clean")
    (store / "checkout-7.2.0.tar").write_bytes(PAYLOAD + b"and a little extra")
    fleet = _fleet(
        {"path": f"{store}/{{service}}-{{version}}.tar", "scanner": {"command": scanner.command}}
    )
    submitted = submit(runtime, fleet, "checkout", "7.2.0", _digest(PAYLOAD))

    blocked, _, shown = _blocked(cluster, submitted.rollout_id, simulator, page_receiver)
    tampered = _digest(PAYLOAD + b"and a little extra")
    assert blocked.reason == (
        f"artifact blocked: digest mismatch: the artifact is {tampered}, "
        f"the release says {_digest(PAYLOAD)}"
    )
    assert scanner.runs() == []  # a mismatched artifact is not worth scanning
    [check] = _checks(cluster.database_url)
    assert (check.admitted, check.digest) == (False, tampered)
    assert "canary-1 │ blocked" in shown and "digest mismatch" in shown


def test_a_missing_artifact_is_blocked(
    cluster: Cluster,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
    tmp_path: Path,
) -> None:
    page_receiver.reset()
    store = _store(tmp_path)
    fleet = _fleet({"path": f"{store}/{{service}}-{{version}}.tar"})
    submitted = submit(runtime, fleet, "checkout", "7.3.0", _digest(PAYLOAD))

    blocked, _, shown = _blocked(cluster, submitted.rollout_id, simulator, page_receiver)
    assert blocked.reason == f"artifact blocked: no artifact at {store}/checkout-7.3.0.tar"
    assert "no artifact at" in shown


def test_a_scanner_finding_blocks_and_pages_without_its_output(
    cluster: Cluster,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
    tmp_path: Path,
) -> None:
    page_receiver.reset()
    store, scanner = _store(tmp_path), Scanner(tmp_path, "finding")
    (store / "checkout-7.4.0.tar").write_bytes(PAYLOAD)
    fleet = _fleet(
        {"path": f"{store}/{{service}}-{{version}}.tar", "scanner": {"command": scanner.command}}
    )
    submitted = submit(runtime, fleet, "checkout", "7.4.0", _digest(PAYLOAD))

    blocked, page, shown = _blocked(cluster, submitted.rollout_id, simulator, page_receiver)
    program = Path(sys.executable).name
    assert blocked.reason == (
        f"artifact blocked: scanner {program} reported a finding (exit code 1)"
    )
    assert scanner.runs() == [[f"{store}/checkout-7.4.0.tar", "7.4.0"]]
    # The findings are kept with the upgrade for the team, not paged.
    [check] = _checks(cluster.database_url)
    assert check.scanner_exit == 1 and check.scanner_output is not None
    assert "CVE-2026-0001" in check.scanner_output
    assert "CVE-2026-0001" not in json.dumps(page)
    assert "reported a finding (exit code 1)" in shown


# --- the check runs once: steps driven by hand on a database no worker watches ------------


@pytest.fixture
def quiet_runtime() -> Iterator[Runtime]:
    with fresh_database("rollout_airgap") as url:
        simulated_fleet(url)
        yield Runtime(url, Backends.real(url, url))


def _ready(runtime: Runtime, rollout_id: int) -> Upgrade:
    upgrade = _upgrades(runtime.database_url, rollout_id)["canary-1"]
    assert upgrade.state == "ready"
    return upgrade


def test_a_redelivered_step_does_not_check_again(quiet_runtime: Runtime, tmp_path: Path) -> None:
    runtime = quiet_runtime
    store, scanner = _store(tmp_path), Scanner(tmp_path, "clean")
    (store / "checkout-8.0.0.tar").write_bytes(PAYLOAD)
    fleet = _fleet(
        {"path": f"{store}/{{service}}-{{version}}.tar", "scanner": {"command": scanner.command}}
    )
    submitted = submit(runtime, fleet, "checkout", "8.0.0", _digest(PAYLOAD))
    upgrade = _ready(runtime, submitted.rollout_id)
    with transaction(runtime.database_url) as session:
        rollout = session.get(Rollout, submitted.rollout_id)
        assert rollout is not None
        session.expunge(rollout)

    # A worker checks, records the verdict, and dies before it deploys.
    admitted = admit(runtime, upgrade, rollout, upgrade.claim)
    assert admitted is not None and admitted[1] is None
    claim = admitted[0]
    assert len(scanner.runs()) == 1
    # The message it was working on comes again, stale now: nothing happens.
    step(runtime, upgrade.id, upgrade.claim)
    assert _ready(runtime, submitted.rollout_id).claim == claim
    # The reconciler hands the row on: the verdict stands, the deploy goes ahead, no rescan.
    step(runtime, upgrade.id, claim)
    after = _upgrades(runtime.database_url, submitted.rollout_id)["canary-1"]
    assert after.state in ("deploying", "verifying")
    assert len(scanner.runs()) == 1
    assert len(_checks(runtime.database_url)) == 1
    assert simulated_fleet(runtime.database_url).deploy_records()[f"upgrade-{upgrade.id}"][1] == 1


def test_a_recorded_block_is_applied_without_a_second_check(
    quiet_runtime: Runtime, tmp_path: Path
) -> None:
    runtime = quiet_runtime
    store, scanner = _store(tmp_path), Scanner(tmp_path, "finding")
    (store / "checkout-8.1.0.tar").write_bytes(PAYLOAD)
    fleet = _fleet(
        {"path": f"{store}/{{service}}-{{version}}.tar", "scanner": {"command": scanner.command}}
    )
    submitted = submit(runtime, fleet, "checkout", "8.1.0", _digest(PAYLOAD))
    upgrade = _ready(runtime, submitted.rollout_id)
    with transaction(runtime.database_url) as session:
        rollout = session.get(Rollout, submitted.rollout_id)
        assert rollout is not None
        session.expunge(rollout)

    admitted = admit(runtime, upgrade, rollout, upgrade.claim)
    assert admitted is not None and admitted[1] is not None
    step(runtime, upgrade.id, admitted[0])
    blocked = _upgrades(runtime.database_url, submitted.rollout_id)["canary-1"]
    assert blocked.state == "blocked" and blocked.reason == admitted[1]
    assert _rollout(runtime.database_url, submitted.rollout_id).state == "failed"
    assert len(scanner.runs()) == 1
