"""The command driver: deploys by running a templated argv (never a shell) in the background."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from rollout.config.base import fill_placeholders
from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, DriverError, Health
from rollout.plan.driver import CommandDriverSpec

OUTPUT_LIMIT = 64 * 1024  # bytes of a deploy's output kept: its tail, where errors are
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a command past its timeout
# A start that died between claiming its key and launching leaves a directory without a
# supervisor; after this long it is reported failed rather than waited on forever.
LAUNCH_GRACE = 30.0
# If the supervisor itself is gone or stuck, status() gives up this long after the timeout.
OVERDUE_GRACE = 30.0
_SHOWN_TAIL = 1000  # characters of output in a failed status's message
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

# Supervisors this process launched: polled so that finished ones do not linger as zombies.
_children: list[subprocess.Popen[bytes]] = []
_children_lock = threading.Lock()


@dataclass(frozen=True)
class CommandSpec:
    deploy: tuple[str, ...]
    status: tuple[str, ...] | None = None
    remove: tuple[str, ...] | None = None
    health: tuple[str, ...] | None = None
    timeout_s: float = 600.0
    health_timeout_s: float = 30.0

    @classmethod
    def from_snapshot(cls, spec: CommandDriverSpec) -> CommandSpec:
        if not spec.deploy:
            raise DriverError("command driver without a deploy command")
        return cls(
            deploy=spec.deploy,
            status=spec.status,
            remove=spec.remove,
            health=spec.health,
            timeout_s=spec.timeout_s,
            health_timeout_s=spec.health_timeout_s,
        )


def render_argv(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Each argument filled on its own: a value stays inside the argument it was put in."""
    return [fill_placeholders(argument, values) for argument in template]


class CommandDriver:
    """One directory per idempotency key under `state_dir`: the plan, the supervisor's pid,
    the command's pid, its output's tail and, once it ended, its result."""

    def __init__(self, spec: CommandSpec, state_dir: Path) -> None:
        self.spec = spec
        self.state_dir = state_dir.resolve()

    # -- the driver port -------------------------------------------------------------------
    def start(self, request: DeployRequest) -> None:
        directory = self._directory(request.key)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            # mkdir is atomic: of any number of starts with one key, exactly one gets here.
            directory.mkdir()
        except FileExistsError:
            return
        steps = self._steps(request)
        plan = {
            "key": request.key,
            "steps": steps,
            "timeout_s": self.spec.timeout_s,
            "started_at": time.time(),
        }
        _write(directory / "plan.json", json.dumps(plan).encode())
        if not steps:
            _finish(directory, {"exit_code": None, "error": _no_remove(request)})
            return
        # The supervisor's own complaints (a traceback, say) land beside the deploy's state.
        with (directory / "supervisor.log").open("wb") as log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "rollout.drivers.command", str(directory)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: a worker's Ctrl-C or its death does not take the deploy along.
                start_new_session=True,
                close_fds=True,
            )
        _write(directory / "supervisor.pid", str(supervisor.pid).encode())
        with _children_lock:
            _children.append(supervisor)

    def status(self, key: str) -> DeployStatus:
        _reap()
        directory = self._directory(key)
        if not directory.is_dir():
            return DeployStatus(
                DeployPhase.FAILED,
                f"no deploy {key} under {self.state_dir} on {socket.gethostname()} "
                "(every worker that polls a deploy must see the same state_dir)",
            )
        result = _read_json(directory / "result.json")
        if result is None:
            result = self._check_running(directory)
        if result is None:
            return DeployStatus(DeployPhase.RUNNING, "running")
        if result.get("exit_code") == 0:
            return DeployStatus(DeployPhase.SUCCEEDED, "exit code 0")
        why = result.get("error") or f"exit code {result.get('exit_code')}"
        tail = _tail_text(self.output(key), _SHOWN_TAIL)
        return DeployStatus(DeployPhase.FAILED, f"{why}: {tail}" if tail else str(why))

    def health(self, environment: str, service: str) -> Health:
        if self.spec.health is None:
            return Health.UNKNOWN
        argv = render_argv(self.spec.health, {"environment": environment, "service": service})
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.spec.health_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DriverError(
                f"health command did not answer within {self.spec.health_timeout_s:g}s"
            ) from None
        except OSError as error:
            raise DriverError(f"health command could not run: {error}") from None
        return Health.HEALTHY if done.returncode == 0 else Health.UNHEALTHY

    def cancel(self, key: str, reason: str) -> DeployStatus:
        """Stop a deploy that still runs (the agent's newer deploy of the same service
        supersedes it) and record it failed; a finished one keeps its result."""
        directory = self._directory(key)
        if directory.is_dir() and not (directory / "result.json").exists():
            plan = _read_json(directory / "plan.json")
            started = float(plan["started_at"]) if plan else directory.stat().st_mtime
            supervisor = _read_pid(directory / "supervisor.pid")
            young = time.time() - started < LAUNCH_GRACE
            # The supervisor first, so that it starts no further step once its command dies.
            if supervisor is not None and _is_supervisor(supervisor, directory, young):
                _kill_group(supervisor)
            _kill_command(directory)
            _finish(directory, {"exit_code": None, "error": reason})
        return self.status(key)

    # -- for storing with the upgrade --------------------------------------------------------
    def output(self, key: str) -> str:
        """The tail (at most OUTPUT_LIMIT bytes) of what the deploy printed, so far."""
        try:
            data = (self._directory(key) / "output").read_bytes()
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", errors="replace")

    # -- internals -------------------------------------------------------------------------------
    def _directory(self, key: str) -> Path:
        # Keys are the engine's (`upgrade-12-rollback`); anything else is hashed, never a path.
        name = key if _SAFE_KEY.fullmatch(key) else "key-" + sha256(key.encode()).hexdigest()
        return self.state_dir / name

    def _steps(self, request: DeployRequest) -> list[list[str]]:
        values = {
            "service": request.service,
            "environment": request.environment,
            "key": request.key,
        }
        if request.version is None:
            if self.spec.remove is None:
                return []
            return [render_argv(self.spec.remove, values)]
        values["version"] = request.version
        steps = [render_argv(self.spec.deploy, values)]
        if self.spec.status is not None:
            steps.append(render_argv(self.spec.status, values))
        return steps

    def _check_running(self, directory: Path) -> dict[str, Any] | None:
        """None while the deploy may still be running; else the result it was given."""
        plan = _read_json(directory / "plan.json")
        started = float(plan["started_at"]) if plan else directory.stat().st_mtime
        elapsed = time.time() - started
        supervisor = _read_pid(directory / "supervisor.pid")
        if supervisor is None:
            if elapsed < LAUNCH_GRACE:
                return None
            return _finish(directory, {"exit_code": None, "error": "the deploy never launched"})
        alive = _is_supervisor(supervisor, directory, young=elapsed < LAUNCH_GRACE)
        overdue = elapsed > self.spec.timeout_s + KILL_GRACE + OVERDUE_GRACE
        if alive and not overdue:
            return None
        # It may have finished between the two reads.
        result = _read_json(directory / "result.json")
        if result is not None:
            return result
        if alive:
            _kill_group(supervisor)
        _kill_command(directory)
        error = (
            f"killed: still running {elapsed:.0f}s after start (timeout {self.spec.timeout_s:g}s)"
            if overdue
            else "the process watching the command died before it finished"
        )
        return _finish(directory, {"exit_code": None, "error": error, "timed_out": overdue})


def _no_remove(request: DeployRequest) -> str:
    return f"removing {request.service} needs a `remove` command in the driver's config"


# --- files ------------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    """Replace `path` atomically: a reader sees the old content or the new, never half."""
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    scratch.write_bytes(data)
    os.replace(scratch, path)


def _finish(directory: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Record the result unless one is recorded already; return the one that stands."""
    scratch = directory / f".result.{uuid.uuid4().hex}"
    scratch.write_bytes(json.dumps(result).encode())
    try:
        # link() fails if the result exists: the first writer wins, whoever else tries.
        os.link(scratch, directory / "result.json")
    except FileExistsError:
        pass
    finally:
        scratch.unlink()
    return _read_json(directory / "result.json") or result


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    return value if isinstance(value, dict) else None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _tail_text(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


# --- processes --------------------------------------------------------------------------------


def _reap() -> None:
    with _children_lock:
        _children[:] = [child for child in _children if child.poll() is None]


def _is_supervisor(pid: int, directory: Path, young: bool) -> bool:
    """Whether `pid` is still this deploy's supervisor (not a zombie, not a reused pid).

    Between fork and exec a new process still shows its parent's command line, so a young
    one is taken on trust: a pid is not reused that fast."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return False
        state = stat.rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X") and (young or str(directory).encode() in cmdline)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_command(directory: Path) -> None:
    """Kill the command's process group, if its recorded pid still runs the program we ran."""
    record = _read_json(directory / "command.json")
    if record is None:
        return
    pid, program = int(record["pid"]), str(record["program"])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return
    if cmdline and cmdline[0] == program.encode():
        _kill_group(pid)


# --- the supervisor: `python -m rollout.drivers.command DIRECTORY` ----------------------------


class _Tail:
    """The last OUTPUT_LIMIT bytes of a stream, kept while it is read."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()
        self.changed = False

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.data += chunk
            del self.data[:-OUTPUT_LIMIT]
            self.changed = True

    def snapshot(self) -> bytes | None:
        with self.lock:
            if not self.changed:
                return None
            self.changed = False
            return bytes(self.data)


def supervise(directory: Path) -> int:
    """Run the plan's steps in order within its timeout, keep their output's tail, record
    the result. Runs detached from the worker, so a deploy holds no worker."""
    _write(directory / "supervisor.pid", str(os.getpid()).encode())
    plan = _read_json(directory / "plan.json")
    assert plan is not None, f"no plan in {directory}"
    deadline = float(plan["started_at"]) + float(plan["timeout_s"])
    tail = _Tail()
    result: dict[str, Any] = {"exit_code": 0}
    for argv in plan["steps"]:
        tail.add(f"$ {shlex.join(argv)}\n".encode())
        result = _run_step(directory, argv, deadline, float(plan["timeout_s"]), tail)
        if result["exit_code"] != 0:
            break
    final = tail.snapshot()
    if final is not None:
        _write(directory / "output", final)
    _finish(directory, result)
    return 0


def _run_step(
    directory: Path, argv: list[str], deadline: float, timeout_s: float, tail: _Tail
) -> dict[str, Any]:
    try:
        # A list and no shell: each argument reaches the program exactly as rendered.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own process group, so a timeout kills whatever it spawned as well.
            start_new_session=True,
        )
    except OSError as error:
        return {"exit_code": None, "error": f"{argv[0]} could not run: {error}"}
    _write(
        directory / "command.json", json.dumps({"pid": process.pid, "program": argv[0]}).encode()
    )
    assert process.stdout is not None
    stream = process.stdout
    reader = threading.Thread(target=_pump, args=(stream, tail), daemon=True)
    reader.start()
    timed_out = False
    while True:
        try:
            process.wait(timeout=max(0.0, min(1.0, deadline - time.time())))
            break
        except subprocess.TimeoutExpired:
            pass
        latest = tail.snapshot()
        if latest is not None:
            _write(directory / "output", latest)
        if time.time() >= deadline:
            timed_out = True
            stop_group(process, KILL_GRACE)
            break
    # Something the command left running may hold the pipe open; do not wait on it forever.
    reader.join(timeout=2.0)
    if timed_out:
        return {
            "exit_code": None,
            "timed_out": True,
            "error": f"killed after its timeout of {timeout_s:g}s ({argv[0]})",
        }
    code = process.returncode
    if code == 0:
        return {"exit_code": 0}
    return {"exit_code": code, "error": f"{argv[0]} exited with {code}"}


def _pump(stream: Any, tail: _Tail) -> None:
    while chunk := stream.read1(65536):
        tail.add(chunk)


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM a process started in a session of its own and all it spawned; SIGKILL them
    if they are still there after `grace` seconds."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
