"""What a channel carries and how it fails: the page message, the channel port, the
errors, and the HTTP plumbing the receivers share."""

from __future__ import annotations

import email.utils
import hashlib
import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
from pydantic import JsonValue

from rollout.secrets import SecretError, SecretRef, scrub

SEVERITIES = ("P0", "P1", "P2", "P3", "P4")


KINDS = ("failure", "decision", "rollback_failed", "blocked")


# How much of a refusing receiver's body an error message carries: enough to say why.
_BODY_SHOWN = 300


class Action(StrEnum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


@dataclass(frozen=True, kw_only=True)
class PageMessage:
    """What a channel delivers: operational data only, never an environment's payload."""

    dedup_key: str
    team: str
    severity: str  # P0 (wake someone) .. P4
    kind: str  # failure | decision | rollback_failed
    service: str
    version: str
    environment: str
    stage: str
    gate: str | None = None
    detail: str  # the measured value against its condition
    summary: str  # the page's whole text
    recipient: str | None = None  # the person on call, by name
    link: str  # where to see more: a `rollout show` command or a URL
    created_at: datetime

    def __post_init__(self) -> None:
        if not self.dedup_key:
            raise ValueError("a page needs a dedup key")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}: {self.severity!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}: {self.kind!r}")
        # The domain's PageKind is welcome; kept as its plain value, so pages compare equal.
        object.__setattr__(self, "kind", str(self.kind))
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be an aware datetime")

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "dedup_key": self.dedup_key,
            "team": self.team,
            "severity": self.severity,
            "kind": self.kind,
            "service": self.service,
            "version": self.version,
            "environment": self.environment,
            "stage": self.stage,
            "gate": self.gate,
            "detail": self.detail,
            "summary": self.summary,
            "recipient": self.recipient,
            "link": self.link,
            "created_at": rfc3339(self.created_at),
        }


class DeliveryError(Exception):
    """A page was not delivered. Messages never carry a secret."""


class RetryableDeliveryError(DeliveryError):
    """Worth trying again: 5xx, 429, a timeout, a connection that failed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the receiver asked us to wait, if it did


class PermanentDeliveryError(DeliveryError):
    """Trying again cannot help: the receiver refused the page (4xx) or the config is wrong."""


class ChannelConfigError(ValueError):
    """A channel's config is wrong; the message names the field, never a secret's value."""


@runtime_checkable
class Channel(Protocol):
    """Delivers a page's trigger, acknowledgement or resolution to one receiver."""

    @property
    def name(self) -> str: ...

    @property
    def timeout(self) -> float:
        """Seconds one attempt may wait on the receiver (per network operation)."""
        ...

    def deliver(self, message: PageMessage, action: Action) -> None:
        """Return once the receiver accepted; raise a DeliveryError otherwise."""
        ...


def headline(message: PageMessage) -> str:
    """One line: `[P0] checkout 2.0.0 failed gate health in prod-eu-1`."""
    gate = f"gate {message.gate}" if message.gate else "deploy"
    what = {
        "failure": f"failed {gate}" if message.gate else "failed to deploy",
        "decision": f"needs a decision on {gate}",
        "rollback_failed": "rollback failed",
        "blocked": "was blocked at air-gapped entry",
    }[message.kind]
    where = message.environment
    return f"[{message.severity}] {message.service} {message.version} {what} in {where}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def redact_url(url: str) -> str:
    """Scheme and host only: a webhook URL's path and query are its secret."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme or not parts.hostname:
        return "<invalid URL>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # HTTP-dates are always GMT
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _resolve(reference: SecretRef, channel: str) -> str:
    try:
        return reference.resolve()
    except SecretError as error:
        raise PermanentDeliveryError(f"{channel}: {error}") from None


def _url_secrets(url: str) -> list[str]:
    """The parts of a URL that would give it away: the whole, and its path and query."""
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    candidates = [url, path_and_query, parts.path, parts.query, parts.password or ""]
    # Too short to be a secret, and replacing "/" would garble every message.
    return [part for part in candidates if len(part) >= 4]


def _post_json(
    channel: str,
    url: str,
    body: Any,
    timeout: float,
    secrets: Iterable[str],
    headers: Mapping[str, str] | None = None,
) -> None:
    hidden = list(secrets)
    where = f"{channel} at {redact_url(url)}"
    try:
        response = _client().post(url, json=body, headers=headers, timeout=timeout)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise PermanentDeliveryError(f"{where}: not a usable http(s) URL") from None
    except httpx.TimeoutException as error:
        raise RetryableDeliveryError(f"{where}: timed out ({type(error).__name__})") from None
    except httpx.TransportError as error:
        # `from None`: a chained httpx error carries the request, and so the whole URL.
        detail = scrub(str(error) or type(error).__name__, hidden)
        raise RetryableDeliveryError(f"{where}: {detail}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    # Scrubbed before it is cut, so that a cut cannot leave half a secret showing.
    said = scrub(" ".join(response.text.split()), hidden)[:_BODY_SHOWN]
    text = f"{where} answered {status}" + (f": {said}" if said else "")
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise RetryableDeliveryError(text, retry_after=retry_after)
    raise PermanentDeliveryError(text)


_clients: dict[int, httpx.Client] = {}


_clients_lock = threading.Lock()


def _client() -> httpx.Client:
    """One client per process: building one costs ~0.2s (TLS setup), and it pools connections.

    Keyed by pid, so that a worker forked from a parent that already delivered gets its own
    and never shares the parent's sockets.
    """
    pid = os.getpid()
    with _clients_lock:
        client = _clients.get(pid)
        if client is None:
            client = _clients[pid] = httpx.Client(follow_redirects=False)
        return client


def _bounded_key(key: str, limit: int) -> str:
    """The key, or when too long a prefix and its hash: still unique, still readable."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: limit - len(digest) - 1]}~{digest}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_link(summary: str, link: str) -> str:
    # The domain's summaries already end with "see: rollout show N"; say it once.
    return summary if link in summary else f"{summary}\n\nSee: {link}"


def _is_url(link: str) -> bool:
    return link.startswith(("http://", "https://"))


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
