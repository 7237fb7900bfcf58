"""The http driver: asks an environment's `rollout agent` to deploy, and polls it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, DriverError, Health
from rollout.json_types import JsonObject
from rollout.plan.driver import HttpDriverSpec
from rollout.secrets import SecretError, SecretRef, scrub

ATTEMPTS = 4  # per call, within its timeout: a restarting agent is tried again soon
_SHOWN = 500  # characters of an agent's refusal kept in a message


class AgentUnavailable(Exception):
    """The agent could not answer now (no connection, a 5xx): worth another attempt."""


@dataclass(frozen=True)
class HttpSpec:
    url: str  # the agent's base URL, already rendered for its environment
    token: SecretRef | None = None
    request_timeout_s: float = 10.0

    @classmethod
    def from_snapshot(cls, spec: HttpDriverSpec) -> HttpSpec:
        if not spec.url:
            raise DriverError("http driver without the agent's url")
        return cls(spec.url.rstrip("/"), spec.token, spec.request_timeout_s)


class HttpDriver:
    """The agent's API: `POST /deployments` (idempotent by key), `GET /deployments/{key}`,
    `GET /health/{service}`. Connection errors and 5xx are retried with backoff; a 4xx is
    the agent's refusal and carries its message."""

    def __init__(self, spec: HttpSpec, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        self._transport = transport

    # -- the driver port -------------------------------------------------------------------
    def start(self, request: DeployRequest) -> None:
        body = {
            "key": request.key,
            "environment": request.environment,
            "service": request.service,
            "version": request.version,
        }
        response = self._call("POST", "/deployments", json=body)
        if response.status_code >= 400:
            raise DriverError(f"the agent refused deploy {request.key}: {_detail(response)}")

    def status(self, key: str) -> DeployStatus:
        response = self._call("GET", f"/deployments/{quote(key, safe='')}")
        if response.status_code == 404:
            # The agent keeps every request on disk, so a key it does not know never reached
            # it: the step asks again under the same key (or times out) instead of failing.
            return DeployStatus(
                DeployPhase.UNKNOWN,
                f"the agent at {self.spec.url} knows no deploy {key} (its request never arrived)",
            )
        if response.status_code >= 400:
            return DeployStatus(DeployPhase.FAILED, f"the agent refused: {_detail(response)}")
        record = _json(response)
        try:
            phase = DeployPhase(str(record.get("phase")))
        except ValueError:
            raise DriverError(
                f"the agent answered an unknown phase {record.get('phase')!r}"
            ) from None
        return DeployStatus(phase, str(record.get("message") or "")[:_SHOWN])

    def health(self, environment: str, service: str) -> Health:
        # 503 is the agent's word for "not healthy", not a failure to answer.
        response = self._call("GET", f"/health/{quote(service, safe='')}", answers=frozenset({503}))
        if response.status_code == 404:
            return Health.UNKNOWN
        if response.status_code not in (200, 503):
            raise DriverError(f"the agent refused a health check: {_detail(response)}")
        try:
            return Health(str(_json(response).get("status")))
        except ValueError:
            return Health.UNKNOWN

    # -- internals -------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, json: Any = None, answers: frozenset[int] = frozenset()
    ) -> httpx.Response:
        """The agent's response; a 5xx not among `answers` is retried like a lost connection."""
        headers = {}
        secrets: list[str] = []
        if self.spec.token is not None:
            try:
                token = self.spec.token.resolve()
            except SecretError as error:
                raise DriverError(f"http driver: {error}") from None
            headers["Authorization"] = f"Bearer {token}"
            secrets.append(token)
        url = self.spec.url + path
        # One call, retries included, stays within request_timeout: a step that outlived
        # its lease would be claimed again and its outcome dropped, over and over.
        budget = self.spec.request_timeout_s
        deadline = time.monotonic() + budget
        try:
            with httpx.Client(timeout=budget, transport=self._transport) as client:
                for attempt in Retrying(
                    stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(budget * 0.9),
                    wait=wait_exponential(multiplier=budget / 20, max=budget / 4),
                    retry=retry_if_exception(
                        lambda e: isinstance(e, httpx.TransportError | AgentUnavailable)
                    ),
                    reraise=True,
                ):
                    with attempt:
                        left = max(0.05, deadline - time.monotonic())
                        response = client.request(
                            method, url, json=json, headers=headers, timeout=left
                        )
                        if response.status_code >= 500 and response.status_code not in answers:
                            raise AgentUnavailable(
                                f"{method} {url} answered {response.status_code}: "
                                f"{_detail(response)}"
                            )
        except (httpx.HTTPError, AgentUnavailable) as error:
            detail = str(error) or type(error).__name__
            raise DriverError(
                scrub(f"the agent could not be asked ({method} {url}): {detail}", secrets)
            ) from None
        return response


def _json(response: httpx.Response) -> JsonObject:
    try:
        value = response.json()
    except ValueError:
        raise DriverError(
            f"the agent's answer is not JSON (status {response.status_code})"
        ) from None
    if not isinstance(value, dict):
        raise DriverError("the agent's answer is not a JSON object")
    return value


def _detail(response: httpx.Response) -> str:
    """The agent's own message: FastAPI's `detail`, else the body's start."""
    try:
        value = response.json()
    except ValueError:
        return response.text[:_SHOWN] or f"status {response.status_code}"
    if isinstance(value, dict) and "detail" in value:
        return f"{response.status_code} {str(value['detail'])[:_SHOWN]}"
    return f"{response.status_code} {str(value)[:_SHOWN]}"
