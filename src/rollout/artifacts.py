"""The I/O of air-gapped entry: stream an artifact through sha256, and run its scanner
(an argument list, no shell) with a timeout, keeping only the tail of what it prints."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from rollout.domain.entry import Fetched, Scanned, shown_location
from rollout.drivers.command import stop_group

CHUNK = 1024 * 1024
OUTPUT_LIMIT = 64 * 1024  # bytes of a scanner's output kept: its tail, where verdicts are
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a scanner past its timeout


class ArtifactUnreachable(RuntimeError):
    """The artifact could not be read for a reason that may pass (a 503, a reset): the
    step is tried again, the upgrade is not blocked for it."""


@dataclass(frozen=True)
class Local:
    """Where a fetched artifact is on this machine while it is checked."""

    fetched: Fetched
    file: Path | None  # None when there is nothing to scan


def _hash_stream(chunks: Iterator[bytes], limit: int, sink: IO[bytes] | None) -> Fetched:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return Fetched(missing=f"artifact larger than its max_size of {limit} bytes")
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return Fetched(sha256=digest.hexdigest(), size=size)


def _file_chunks(handle: IO[bytes], deadline: float, location: str) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        if time.monotonic() > deadline:
            raise ArtifactUnreachable(f"reading {location} took longer than its timeout")
        yield chunk


@contextmanager
def fetch(location: str, max_bytes: int, timeout_s: float) -> Iterator[Local]:
    """Hash the artifact at `location` (a path or an http(s) URL). A downloaded artifact is
    kept in a private temporary file while the context lasts, so that the scanner sees the
    very bytes that were hashed."""
    shown = shown_location(location)
    deadline = time.monotonic() + timeout_s
    if not location.startswith(("http://", "https://")):
        try:
            with open(location, "rb") as handle:
                fetched = _hash_stream(_file_chunks(handle, deadline, shown), max_bytes, None)
        except FileNotFoundError:
            fetched = Fetched(missing=f"no artifact at {shown}")
        except IsADirectoryError:
            fetched = Fetched(missing=f"{shown} is a directory, not an artifact")
        except PermissionError:
            fetched = Fetched(missing=f"artifact at {shown} is not readable by the worker")
        yield Local(fetched, Path(location) if fetched.missing is None else None)
        return
    with tempfile.TemporaryDirectory(prefix="rollout-artifact-") as scratch:
        target = Path(scratch) / "artifact"
        fetched = _download(location, shown, target, max_bytes, timeout_s, deadline)
        yield Local(fetched, target if fetched.missing is None else None)


def _download(
    url: str, shown: str, target: Path, max_bytes: int, timeout_s: float, deadline: float
) -> Fetched:
    try:
        with (
            httpx.stream("GET", url, timeout=timeout_s, follow_redirects=False) as response,
            target.open("wb") as sink,
        ):
            if response.status_code in (404, 410):
                return Fetched(missing=f"no artifact at {shown} (HTTP {response.status_code})")
            if response.status_code >= 500 or response.status_code == 429:
                raise ArtifactUnreachable(f"{shown} answered HTTP {response.status_code}")
            if response.status_code != 200:
                return Fetched(
                    missing=f"{shown} refused the artifact (HTTP {response.status_code})"
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                return Fetched(missing=f"artifact larger than its max_size of {max_bytes} bytes")

            def chunks() -> Iterator[bytes]:
                for chunk in response.iter_bytes(CHUNK):
                    if time.monotonic() > deadline:
                        raise ArtifactUnreachable(f"downloading {shown} exceeded its timeout")
                    yield chunk

            return _hash_stream(chunks(), max_bytes, sink)
    except httpx.HTTPError as error:
        # The URL is never in the message: it may carry a token in its query.
        raise ArtifactUnreachable(f"{shown}: {type(error).__name__}") from None


class _Tail:
    """The last OUTPUT_LIMIT bytes of a stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def pump(self, stream: IO[bytes]) -> None:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self.data += chunk
            del self.data[:-OUTPUT_LIMIT]


def scan(argv: Sequence[str], timeout_s: float) -> tuple[Scanned, str]:
    """Run the scanner; its verdict (exit code, or why it has none) and its output's tail."""
    program = os.path.basename(argv[0])
    try:
        # A list and no shell: each argument reaches the program exactly as rendered.
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own process group, so a timeout kills whatever it spawned as well.
            start_new_session=True,
        )
    except OSError as error:
        return Scanned(program, None, f"could not run: {error.strerror or error}"), ""
    assert process.stdout is not None
    tail = _Tail()
    reader = threading.Thread(target=tail.pump, args=(process.stdout,), daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop_group(process, KILL_GRACE)
    # Something the scanner left running may hold the pipe open; do not wait on it forever.
    reader.join(timeout=2.0)
    output = bytes(tail.data).decode("utf-8", errors="replace")
    if timed_out:
        return Scanned(program, None, f"did not finish within {timeout_s:g}s"), output
    return Scanned(program, process.returncode), output
