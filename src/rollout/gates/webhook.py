"""The webhook gate: an external judge is asked about the upgrade; 2xx passes, else it fails."""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from datetime import datetime

import httpx

from rollout.domain.gates import Measurement, Outcome
from rollout.gates import GateContext
from rollout.observability import redaction
from rollout.plan import WebhookGateSpec

CONDITION = "status in 2xx"
_SHOWN_BODY = 500  # the judge's reason goes into the message; a page of HTML does not


class _NotMeasured(Exception):
    pass


def measure_webhook(spec: WebhookGateSpec, context: GateContext, now: datetime) -> Measurement:
    try:
        url, where, secrets = _target(spec, context)
    except _NotMeasured as problem:
        return Measurement(now, Outcome.ERROR, None, CONDITION, f"{problem} (webhook)")
    headers = {}
    if secrets.get("token"):
        headers["authorization"] = f"Bearer {secrets['token']}"
    payload = {
        "service": context.service,
        "version": context.version,
        "environment": context.environment,
        "stage": context.stage,
        "gate": spec.name,
    }
    # The judge is outside the environment: always the real network, never the driver's.
    try:
        with httpx.Client(timeout=spec.timeout_s) as http:
            response = http.post(url, json=payload, headers=headers)
    except httpx.HTTPError as error:
        detail = _redact(str(error) or type(error).__name__, secrets)
        return Measurement(now, Outcome.ERROR, None, CONDITION, f"{detail} ({where})")

    value = f"status {response.status_code}"
    if 200 <= response.status_code < 300:
        return Measurement(now, Outcome.SUCCESS, value, CONDITION, f"{value} ({where})")
    body = _redact(response.text.strip(), secrets)
    if len(body) > _SHOWN_BODY:
        body = body[: _SHOWN_BODY - 1] + "…"
    message = f"{value}, wanted {CONDITION} ({where})"
    if body:
        message += f": {body}"
    return Measurement(now, Outcome.FAILURE, value, CONDITION, message)


def _target(spec: WebhookGateSpec, context: GateContext) -> tuple[str, str, dict[str, str]]:
    """The URL to ask, how messages name it, and the secret values messages must not show."""
    secrets: dict[str, str] = {}
    token_env = spec.token_env
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise _NotMeasured(f"environment variable {token_env} (token_env) is not set")
        secrets["token"] = token
    fields = {
        "service": context.service,
        "version": context.version,
        "environment": context.environment,
        "stage": context.stage,
    }
    url_env = spec.url_env
    if url_env:
        url = os.environ.get(url_env)
        if not url:
            raise _NotMeasured(f"environment variable {url_env} (url_env) is not set")
        secrets["url"] = url
        # A URL from the environment is a secret: messages name the variable, not the URL.
        # Spans of the call (httpx's) and log lines are scrubbed of it, and of the token.
        for value in secrets.values():
            redaction.remember(value)
        return url, f"webhook ${url_env}", secrets
    assert spec.url is not None  # the config gives url or url_env
    url = string.Formatter().vformat(spec.url, (), fields)
    return url, f"webhook POST {url}", secrets


def _redact(text: str, secrets: Mapping[str, str]) -> str:
    for secret in secrets.values():
        if secret:
            text = text.replace(secret, "[secret]")
    return text
