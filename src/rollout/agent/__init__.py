"""The `rollout agent`: applies versions in its own environment through a command, and keeps
what it was asked on disk so that a restart neither loses nor repeats a deploy."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from rollout.config.base import Name
from rollout.config.environments import DeployArgv, HealthArgv, RemoveArgv
from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, DriverError, Health
from rollout.drivers.command import CommandDriver, CommandSpec
from rollout.durations import PositiveDuration
from rollout.json_types import JsonObject
from rollout.secrets import SecretRef

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _api_url(value: str) -> str:
    if not re.match(r"https?://", value):
        raise ValueError(f"url {value!r} must start with http:// or https://")
    return value.rstrip("/")


class PullSettings(_Model):
    """Pull mode: the agent calls the orchestrator's API; nothing calls the agent."""

    api_url: Annotated[str, AfterValidator(_api_url)]
    interval: PositiveDuration = timedelta(seconds=5)
    request_timeout: PositiveDuration = timedelta(seconds=10)


class AgentConfig(_Model):
    environment: Name
    # argv templates, run without a shell: {service} {version} {environment} {key}.
    deploy: DeployArgv
    remove: RemoveArgv | None = None
    # Exit 0 healthy, else unhealthy; without it a service is healthy while its last deploy
    # succeeded.
    health: HealthArgv | None = None
    timeout: PositiveDuration = timedelta(minutes=10)
    state_dir: Annotated[str, Field(min_length=1)]
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8480
    # Push: the token the orchestrator must send. Pull: the agent's own API token.
    token: SecretRef | None = None
    pull: PullSettings | None = None


class AgentConfigError(ValueError):
    """The agent's config is unusable; the message names the file and each bad field."""


def load_agent_config(path: Path) -> AgentConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AgentConfigError(f"{path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise AgentConfigError(f"{path}: not valid YAML: {error}") from None
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        raise AgentConfigError(f"{path}: {problems}") from None


class Conflict(ValueError):
    """The key is known with another service or version: one key is one deploy."""


class WrongEnvironment(ValueError):
    """The deploy is for another environment than this agent's."""


class RequestRecord(BaseModel):
    """A deploy the agent accepted, as its state directory keeps it (one file a key)."""

    model_config = ConfigDict(frozen=True)

    key: str
    environment: str
    service: str
    version: str | None
    received_at: float


@dataclass(frozen=True)
class Deployment:
    key: str
    environment: str
    service: str
    version: str | None
    received_at: float
    phase: DeployPhase
    message: str

    def as_json(self) -> JsonObject:
        return {
            "key": self.key,
            "environment": self.environment,
            "service": self.service,
            "version": self.version,
            "phase": self.phase.value,
            "message": self.message,
        }


class Agent:
    """Each deploy is a request file under `state_dir/requests` (written before anything
    runs) and a supervised run under `state_dir/runs` (the command driver's, detached from
    this process): killed and restarted, the agent finds both and reports the real outcome."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.environment = config.environment
        state = Path(config.state_dir).resolve()
        self.requests = state / "requests"
        self.requests.mkdir(parents=True, exist_ok=True)
        spec = CommandSpec(
            deploy=tuple(config.deploy),
            remove=None if config.remove is None else tuple(config.remove),
            health=None if config.health is None else tuple(config.health),
            timeout_s=config.timeout.total_seconds(),
        )
        self.runner = CommandDriver(spec, state / "runs")
        self._lock = threading.Lock()

    def recover(self) -> None:
        """Launch what was accepted but not launched before a crash (a launched one is not
        launched again: the runner is idempotent by key)."""
        for record in self._records():
            self.runner.start(_request(record))

    def deploy(self, request: DeployRequest) -> tuple[Deployment, bool]:
        """Accept a deploy; the same key again is the same deploy. True if it is new."""
        if request.environment != self.environment:
            raise WrongEnvironment(
                f"this agent deploys to {self.environment}, not {request.environment}"
            )
        with self._lock:
            known = self._read(request.key)
            created = known is None
            if known is None:
                # A newer deploy of a service supersedes one still running (the rollback
                # after a hung deploy, above all): it must not finish after this one.
                for other in self._records():
                    if other.service == request.service:
                        self.runner.cancel(other.key, f"superseded by deploy {request.key}")
                record = RequestRecord(
                    key=request.key,
                    environment=request.environment,
                    service=request.service,
                    version=request.version,
                    received_at=time.time(),
                )
                _write_new(self._path(request.key), record.model_dump_json().encode())
                known = self._read(request.key)
                # Another process on the same state_dir may have recorded the key first.
                created = known == record
            assert known is not None
            if (known.service, known.version) != (request.service, request.version):
                raise Conflict(
                    f"deploy {request.key} is {known.service} {known.version}; "
                    f"refusing {request.service} {request.version} under the same key"
                )
            self.runner.start(request)
        found = self.status(request.key)
        assert found is not None
        return found, created

    def status(self, key: str) -> Deployment | None:
        record = self._read(key)
        if record is None:
            return None
        return self._deployment(record)

    def versions(self) -> dict[str, Deployment]:
        """Per service, its newest deploy that succeeded: what runs there now."""
        running: dict[str, Deployment] = {}
        for record in sorted(self._records(), key=lambda r: r.received_at):
            deployment = self._deployment(record)
            if deployment.phase is DeployPhase.SUCCEEDED:
                running[deployment.service] = deployment
        return running

    def health(self, service: str) -> Health | None:
        """None: this agent knows nothing of the service."""
        if self.config.health is not None:
            try:
                return self.runner.health(self.environment, service)
            except DriverError:
                return Health.UNKNOWN
        latest = max(
            (r for r in self._records() if r.service == service),
            key=lambda r: r.received_at,
            default=None,
        )
        if latest is None:
            return None
        phase = self._deployment(latest).phase
        if phase is DeployPhase.SUCCEEDED:
            return Health.HEALTHY
        return Health.UNHEALTHY if phase is DeployPhase.FAILED else Health.UNKNOWN

    # -- internals -------------------------------------------------------------------------
    def _deployment(self, record: RequestRecord) -> Deployment:
        status: DeployStatus = self.runner.status(record.key)
        return Deployment(
            key=record.key,
            environment=record.environment,
            service=record.service,
            version=record.version,
            received_at=record.received_at,
            phase=status.phase,
            message=status.message,
        )

    def _path(self, key: str) -> Path:
        name = key if re.fullmatch(KEY_PATTERN, key) else "key-" + sha256(key.encode()).hexdigest()
        return self.requests / f"{name}.json"

    def _read(self, key: str) -> RequestRecord | None:
        try:
            return RequestRecord.model_validate_json(self._path(key).read_bytes())
        except FileNotFoundError:
            return None

    def _records(self) -> list[RequestRecord]:
        return [
            RequestRecord.model_validate_json(path.read_bytes())
            for path in self.requests.glob("*.json")
        ]


def _request(record: RequestRecord) -> DeployRequest:
    return DeployRequest(record.key, record.environment, record.service, record.version)


def _write_new(path: Path, data: bytes) -> None:
    """Create `path` with `data` whole, or not at all: a crash leaves no half record, and
    of two writers (another agent on the same state_dir) the first one's record stands."""
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    scratch.write_bytes(data)
    try:
        os.link(scratch, path)
    except FileExistsError:
        pass
    finally:
        scratch.unlink()
