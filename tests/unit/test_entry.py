"""Air-gapped entry, the pure parts: where an artifact is, the scanner's arguments, the
verdict on digest and scan, and the `artifacts` config with its mistakes."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.config import ConfigError, load_fleet
from rollout.domain.entry import (
    Fetched,
    Scanned,
    TemplateError,
    artifact_path,
    artifact_url,
    judge,
    needs_scan,
    scanner_argv,
    shown_location,
)
from rollout.domain.paging import PageFacts, PageKind, summary
from rollout.domain.states import UpgradeState, check_upgrade

GOOD = "a" * 64
DIGEST = f"sha256:{GOOD}"
VALUES = {"service": "checkout", "version": "2.4.1", "environment": "vault-1", "digest": DIGEST}


# --- templates ----------------------------------------------------------------------------


def test_a_path_is_filled_in_one_pass() -> None:
    template = "/srv/artifacts/{service}/{version}.tar"
    assert artifact_path(template, VALUES) == "/srv/artifacts/checkout/2.4.1.tar"
    # A value that looks like a placeholder stays text: it is never read as a template.
    odd = {**VALUES, "version": "{service}"}
    assert artifact_path(template, odd) == "/srv/artifacts/checkout/{service}.tar"
    # Unknown placeholders and other braces are text.
    assert artifact_path("/a/{other}/{service}", VALUES) == "/a/{other}/checkout"


@pytest.mark.parametrize("version", ["..", ".", "1/../../etc/passwd", "a\0b", ""])
def test_nothing_in_a_value_leads_a_path_elsewhere(version: str) -> None:
    with pytest.raises(TemplateError, match="cannot be part of an artifact path"):
        artifact_path("/srv/{service}/{version}.tar", {**VALUES, "version": version})


def test_a_url_percent_encodes_each_value() -> None:
    url = artifact_url("https://store.example/{service}/{version}?d={digest}", VALUES)
    assert url == f"https://store.example/checkout/2.4.1?d=sha256%3A{GOOD}"
    hostile = artifact_url("https://s/{version}", {"version": "1.0/../x?y=1#z"})
    assert hostile == "https://s/1.0%2F..%2Fx%3Fy%3D1%23z"


@given(st.text(min_size=1, max_size=40))
def test_a_scanner_argument_stays_one_inert_argument(version: str) -> None:
    template = ["trivy", "image", "--input", "{artifact}", "--tag={version}"]
    argv = scanner_argv(template, {**VALUES, "version": version, "artifact": "/tmp/a.tar"})
    assert len(argv) == len(template)
    assert argv[:4] == ["trivy", "image", "--input", "/tmp/a.tar"]
    assert argv[4] == f"--tag={version}"


def test_an_empty_scanner_is_refused() -> None:
    with pytest.raises(TemplateError):
        scanner_argv([], VALUES)


def test_shown_locations_carry_no_credentials() -> None:
    assert shown_location("https://u:secret@store.example:8443/a.tar?token=t") == (
        "https://store.example:8443/a.tar"
    )
    assert shown_location("/srv/a.tar") == "/srv/a.tar"


# --- the verdict --------------------------------------------------------------------------


def test_a_matching_digest_without_a_scanner_is_admitted() -> None:
    verdict = judge(DIGEST, Fetched(sha256=GOOD, size=10), None)
    assert verdict.admitted
    assert verdict.reason == f"artifact verified: {DIGEST} (10 bytes)"


def test_a_mismatch_blocks_and_names_both_digests() -> None:
    other = "b" * 64
    verdict = judge(DIGEST, Fetched(sha256=other, size=10), None)
    assert not verdict.admitted
    assert verdict.reason == (
        f"artifact blocked: digest mismatch: the artifact is sha256:{other}, "
        f"the release says {DIGEST}"
    )
    assert not needs_scan(DIGEST, Fetched(sha256=other))


def test_a_missing_artifact_or_digest_blocks() -> None:
    missing = judge(DIGEST, Fetched(missing="no artifact at /srv/x.tar"), None)
    assert (missing.admitted, missing.reason) == (
        False,
        "artifact blocked: no artifact at /srv/x.tar",
    )
    undigested = judge(None, Fetched(sha256=GOOD), None)
    assert not undigested.admitted and "no digest" in undigested.reason
    assert not needs_scan(None, Fetched(sha256=GOOD))


@pytest.mark.parametrize(
    ("scanned", "admitted", "reason"),
    [
        (Scanned("trivy", 0), True, f"artifact verified: {DIGEST} (10 bytes), scanner trivy 0"),
        (
            Scanned("trivy", 1),
            False,
            "artifact blocked: scanner trivy reported a finding (exit code 1)",
        ),
        (
            Scanned("trivy", -9),
            False,
            "artifact blocked: scanner trivy reported a finding (exit code -9)",
        ),
        (
            Scanned("trivy", None, "did not finish within 300s"),
            False,
            "artifact blocked: scanner trivy: did not finish within 300s",
        ),
        (
            Scanned("trivy", None, "could not run: No such file or directory"),
            False,
            "artifact blocked: scanner trivy: could not run: No such file or directory",
        ),
    ],
)
def test_the_scanner_decides_after_the_digest(
    scanned: Scanned, admitted: bool, reason: str
) -> None:
    fetched = Fetched(sha256=GOOD, size=10)
    assert needs_scan(DIGEST, fetched)
    verdict = judge(DIGEST, fetched, scanned)
    assert (verdict.admitted, verdict.reason) == (admitted, reason)


def test_digests_compare_without_regard_to_case() -> None:
    assert judge(DIGEST.upper().replace("SHA256", "sha256"), Fetched(sha256=GOOD), None).admitted


# --- the lifecycle and the page -----------------------------------------------------------


def test_a_blocked_upgrade_never_started_and_is_final() -> None:
    check_upgrade(UpgradeState.READY, UpgradeState.BLOCKED)
    assert UpgradeState.BLOCKED.final and not UpgradeState.BLOCKED.started
    assert not UpgradeState.BLOCKED.in_flight


def test_a_blocked_page_says_nothing_was_deployed() -> None:
    facts = PageFacts(
        1, "checkout", "2.4.1", "vault-1", "canary", None, "artifact blocked: x", None
    )
    text = summary(PageKind.BLOCKED, facts)
    assert text == (
        "checkout 2.4.1 in vault-1 (canary): artifact blocked: x. Nothing was deployed; "
        "rollout halted. see: rollout show 1"
    )


# --- the config ---------------------------------------------------------------------------

BASE = """\
teams:
  - name: payments
stages:
  - name: canary
environments:
  - name: vault-1
    stage: canary
    driver: {type: simulated}
    labels: {air_gapped: true}
services:
  - name: checkout
    team: payments
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_artifacts_at_fleet_and_service_level(tmp_path: Path) -> None:
    fleet = load_fleet(
        _write(
            tmp_path,
            BASE
            + "    artifacts: {url: 'https://store/{service}/{version}', max_size: 1MiB}\n"
            + "  - name: ledger\n    team: payments\n"
            + "artifacts:\n"
            + "  path: /srv/artifacts/{service}/{version}.tar\n"
            + "  scanner: {command: [trivy, image, --input, '{artifact}'], timeout: 2m}\n",
        )
    )
    checkout = fleet.artifacts_for(fleet.service("checkout"))
    assert checkout is not None and checkout.url == "https://store/{service}/{version}"
    assert checkout.max_size == 2**20 and checkout.scanner is None
    ledger = fleet.artifacts_for(fleet.service("ledger"))
    assert ledger is not None and ledger.path == "/srv/artifacts/{service}/{version}.tar"
    assert ledger.scanner is not None and ledger.scanner.timeout == timedelta(minutes=2)
    # Both have artifacts: nothing about unverified entry, only that releases need a digest.
    assert [w for w in fleet.warnings() if not w.startswith("teams[")] == [
        "services[0]: checkout deploys into air-gapped vault-1: a release of it without "
        "--digest is blocked there",
        "services[1]: ledger deploys into air-gapped vault-1: a release of it without "
        "--digest is blocked there",
    ]


def test_an_air_gapped_environment_without_artifacts_is_warned_about(tmp_path: Path) -> None:
    fleet = load_fleet(_write(tmp_path, BASE))
    assert [w for w in fleet.warnings() if w.startswith("environments[")] == [
        "environments[0]: vault-1 is air-gapped, but no `artifacts` location is set for "
        "checkout: what enters it is not verified"
    ]
    many = BASE + "".join(f"  - {{name: s{i}, team: payments}}\n" for i in range(4))
    [warning] = [
        w for w in load_fleet(_write(tmp_path, many)).warnings() if w.startswith("environments[")
    ]
    assert "set for checkout, s0, s1 and 2 more:" in warning


@pytest.mark.parametrize(
    ("artifacts", "path", "message"),
    [
        ("{max_size: 1GiB}", "artifacts", "give exactly one of `path` and `url`"),
        ("{path: /a, url: 'http://b'}", "artifacts", "give exactly one of `path` and `url`"),
        ("{path: 'relative/{version}'}", "artifacts.path", "must be absolute"),
        ("{path: '/a/{tag}'}", "artifacts.path", "unknown placeholder '{tag}'"),
        ("{url: 'ftp://x'}", "artifacts.url", "must start with http:// or https://"),
        ("{path: /a, scanner: {command: []}}", "artifacts.scanner.command", "at least 1"),
        (
            "{path: /a, scanner: {command: [scan, '{key}']}}",
            "artifacts.scanner.command",
            "unknown placeholder '{key}'",
        ),
        ("{path: /a, scanner: {command: [scan], timeout: 0s}}", "artifacts.scanner.timeout", "0s"),
        ("{path: /a, shell: true}", "artifacts.shell", ""),
    ],
)
def test_artifacts_mistakes_name_file_line_path_and_field(
    tmp_path: Path, artifacts: str, path: str, message: str
) -> None:
    file = _write(tmp_path, BASE + f"artifacts: {artifacts}\n")
    with pytest.raises(ConfigError) as caught:
        load_fleet(file)
    [problem] = caught.value.problems
    assert problem.file == str(file) and problem.line == 13
    assert problem.path == path
    assert message in problem.message


def test_a_service_in_an_air_gapped_environment_needs_digests(tmp_path: Path) -> None:
    # Issue 15: a release without --digest was only found blocked once it reached vault-1.
    text = BASE.replace(
        "services:\n",
        "  - name: vault-2\n    stage: canary\n    driver: {type: simulated}\n"
        "    labels: {air_gapped: true}\n"
        "  - name: open-1\n    stage: canary\n    driver: {type: simulated}\n"
        "    labels: {tier: open}\n"
        "services:\n",
    )
    text += "  - name: web\n    team: payments\n    environments: {labels: {tier: open}}\n"
    warnings = load_fleet(_write(tmp_path, text)).warnings()
    assert [w for w in warnings if w.startswith("services[")] == [
        "services[0]: checkout deploys into air-gapped vault-1, vault-2: a release of it "
        "without --digest is blocked there"
    ]
