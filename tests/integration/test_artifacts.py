"""The I/O of air-gapped entry on real files, a real HTTP server and real processes: an
artifact streamed through sha256, and a scanner run without a shell, timed out, its output
bounded."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rollout.artifacts import OUTPUT_LIMIT, ArtifactUnreachable, fetch, scan
from rollout.domain.entry import scanner_argv

pytestmark = pytest.mark.integration

BYTES = b"layer-0" * 300_000  # a little over 2 MiB: more than one chunk


def test_a_file_is_hashed_as_it_streams(tmp_path: Path) -> None:
    artifact = tmp_path / "checkout-2.4.1.tar"
    artifact.write_bytes(BYTES)
    with fetch(str(artifact), 10 * 2**20, 30) as local:
        assert local.fetched.sha256 == hashlib.sha256(BYTES).hexdigest()
        assert local.fetched.size == len(BYTES) and local.fetched.missing is None
        assert local.file == artifact


def test_a_missing_or_oversized_file_is_named_not_read(tmp_path: Path) -> None:
    with fetch(str(tmp_path / "nope.tar"), 2**20, 30) as local:
        assert local.fetched.missing == f"no artifact at {tmp_path / 'nope.tar'}"
        assert local.file is None
    big = tmp_path / "big.tar"
    big.write_bytes(BYTES)
    with fetch(str(big), 2**20, 30) as local:
        assert local.fetched.missing == f"artifact larger than its max_size of {2**20} bytes"
        assert local.fetched.sha256 is None


class _Store:
    """An artifact store over HTTP: answers from a table of path -> (status, body)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = store.answers.get(self.path.split("?")[0], (404, b""))
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def store() -> Iterator[_Store]:
    served = _Store()
    yield served
    served.server.shutdown()


def test_a_download_is_hashed_and_kept_only_while_it_is_checked(store: _Store) -> None:
    store.answers["/checkout/2.4.1.tar"] = (200, BYTES)
    with fetch(f"{store.url}/checkout/2.4.1.tar?token=s3cret", 10 * 2**20, 30) as local:
        assert local.fetched.sha256 == hashlib.sha256(BYTES).hexdigest()
        assert local.file is not None and local.file.read_bytes() == BYTES
        kept = local.file
    assert not kept.exists()


def test_a_download_that_is_missing_too_large_or_failing(store: _Store) -> None:
    with fetch(f"{store.url}/gone.tar?token=s3cret", 2**20, 30) as local:
        assert local.fetched.missing == f"no artifact at {store.url}/gone.tar (HTTP 404)"
    store.answers["/big.tar"] = (200, BYTES)
    with fetch(f"{store.url}/big.tar", 2**20, 30) as local:
        assert local.fetched.missing == f"artifact larger than its max_size of {2**20} bytes"
    store.answers["/busy.tar"] = (503, b"")
    with (
        pytest.raises(ArtifactUnreachable) as caught,
        fetch(f"{store.url}/busy.tar?token=s3cret", 2**20, 30),
    ):
        pass
    assert "HTTP 503" in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.fixture
def scanner(tmp_path: Path) -> Path:
    """A scanner that records its arguments, prints, and exits as its first argument says."""
    script = tmp_path / "scanner.py"
    script.write_text(
        "import json, sys, time\n"
        "mode, record = sys.argv[1], sys.argv[2]\n"
        "open(record, 'w').write(json.dumps(sys.argv[3:]))\n"
        "if mode == 'hang':\n"
        "    time.sleep(120)\n"
        "if mode == 'loud':\n"
        "    sys.stdout.write('x' * 200_000 + 'THE-END')\n"
        "print('scanned', sys.argv[3])\n"
        "sys.exit(0 if mode in ('clean', 'loud') else 7)\n"
    )
    return script


def test_a_clean_scan_and_a_finding(tmp_path: Path, scanner: Path) -> None:
    record = tmp_path / "argv.json"
    clean, output = scan([sys.executable, str(scanner), "clean", str(record), "/a.tar"], 30)
    assert (clean.exit_code, clean.error) == (0, None)
    assert "scanned /a.tar" in output
    finding, _ = scan([sys.executable, str(scanner), "finding", str(record), "/a.tar"], 30)
    assert finding.exit_code == 7


def test_a_scanner_that_cannot_run_or_hangs(tmp_path: Path, scanner: Path) -> None:
    missing, _ = scan([str(tmp_path / "no-such-scanner")], 30)
    assert missing.exit_code is None and missing.error is not None
    assert missing.error.startswith("could not run")
    began = time.monotonic()
    hung, _ = scan([sys.executable, str(scanner), "hang", str(tmp_path / "r.json")], 2)
    assert (hung.exit_code, hung.error) == (None, "did not finish within 2s")
    assert time.monotonic() - began < 15


def test_the_scanners_output_is_bounded_to_its_tail(tmp_path: Path, scanner: Path) -> None:
    argv = [sys.executable, str(scanner), "loud", str(tmp_path / "r.json"), "/a.tar"]
    loud, output = scan(argv, 30)
    assert loud.exit_code == 0
    assert len(output.encode()) <= OUTPUT_LIMIT
    assert output.endswith("THE-ENDscanned /a.tar\n")


@pytest.mark.parametrize(
    "version",
    [
        "1.0; touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        "1.0 && touch {marker} #",
        "1.0\ntouch {marker}",
        "{{artifact}} '\"*",
    ],
)
def test_nothing_in_a_version_is_run_or_split(tmp_path: Path, scanner: Path, version: str) -> None:
    marker = tmp_path / "pwned"
    hostile = version.format(marker=marker)
    record = tmp_path / "argv.json"
    template = [sys.executable, str(scanner), "clean", str(record), "{artifact}", "{version}"]
    argv = scanner_argv(template, {"artifact": "/a.tar", "version": hostile})
    scanned, _ = scan(argv, 30)
    assert scanned.exit_code == 0
    assert json.loads(record.read_text()) == ["/a.tar", hostile]  # verbatim, one argument
    assert not marker.exists()
