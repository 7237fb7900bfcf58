"""Pull mode: the agent asks the orchestrator what its environment should run, applies it,
and reports each outcome back; nothing ever calls into the environment."""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

import httpx

from rollout.agent import Agent, Conflict, PullSettings, WrongEnvironment
from rollout.drivers import DeployPhase, DeployRequest, Health
from rollout.json_types import JsonObject
from rollout.secrets import SecretError, SecretRef, scrub

log = logging.getLogger("rollout.agent")


def pull_once(agent: Agent, settings: PullSettings, token: SecretRef, client: httpx.Client) -> int:
    """One round: start every desired deploy (idempotent by key), report the finished ones.
    Returns how many outcomes were reported."""
    secret = token.resolve()
    headers = {"Authorization": f"Bearer {secret}"}
    base = f"{settings.api_url}/v1/agents/{quote(agent.environment, safe='')}"
    try:
        answer = client.get(f"{base}/desired", headers=headers)
        answer.raise_for_status()
        desired: list[JsonObject] = answer.json()["deployments"]
        reported = 0
        for item in desired:
            request = DeployRequest(
                str(item["key"]),
                agent.environment,
                str(item["service"]),
                None if item["version"] is None else str(item["version"]),
            )
            try:
                deployment, _ = agent.deploy(request)
                phase, message = deployment.phase, deployment.message
            except (Conflict, WrongEnvironment) as error:
                phase, message = DeployPhase.FAILED, str(error)
            if phase is DeployPhase.RUNNING:
                continue
            sent = client.post(
                f"{base}/reports",
                headers=headers,
                json={"key": request.key, "phase": phase.value, "message": message[:2000]},
            )
            sent.raise_for_status()
            reported += 1
        # No probe can reach this environment: its health travels with the pull.
        states = {
            service: (agent.health(service) or Health.UNKNOWN).value for service in agent.versions()
        }
        if states:
            client.post(
                f"{base}/health", headers=headers, json={"services": states}
            ).raise_for_status()
        return reported
    except httpx.HTTPError as error:
        # The token never reaches a log line, even inside an error's text.
        raise PullError(scrub(str(error) or type(error).__name__, [secret])) from None


class PullError(RuntimeError):
    """A round could not talk to the orchestrator; the next round tries again."""


def pull_forever(
    agent: Agent, settings: PullSettings, token: SecretRef | None, stop: threading.Event
) -> None:
    assert token is not None
    log.info("agent for %s pulling from %s", agent.environment, settings.api_url)
    with httpx.Client(timeout=settings.request_timeout.total_seconds()) as client:
        while not stop.is_set():
            try:
                pull_once(agent, settings, token, client)
            except (PullError, SecretError) as error:
                log.warning("pull round failed: %s", error)
            stop.wait(settings.interval.total_seconds())
