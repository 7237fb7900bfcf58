"""Paging channels: one page, in the exact shape its receiver expects, and how delivery failed."""

from __future__ import annotations

import email.utils
import hashlib
import math
import os
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
from pydantic import JsonValue, TypeAdapter, ValidationError

from rollout.plan.channels import (
    CHANNEL_TYPES,
    PAGERDUTY_URL,
    AlertmanagerChannelSpec,
    ChannelSpec,
    EmailChannelSpec,
    PagerDutyChannelSpec,
    SlackChannelSpec,
    WebhookChannelSpec,
)
from rollout.secrets import SecretError, SecretRef, scrub

SEVERITIES = ("P0", "P1", "P2", "P3", "P4")
KINDS = ("failure", "decision", "rollback_failed", "blocked")
PAGERDUTY_SEVERITY = {
    "P0": "critical",
    "P1": "error",
    "P2": "warning",
    "P3": "info",
    "P4": "info",
}
ALERTNAMES = {
    "failure": "RolloutGateFailed",
    "decision": "RolloutGateInconclusive",
    "rollback_failed": "RolloutRollbackFailed",
    "blocked": "RolloutArtifactBlocked",
}
# PagerDuty's documented limits on an event.
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_KEY_MAX = 255
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


def pagerduty_event(message: PageMessage, action: Action, routing_key: str) -> dict[str, JsonValue]:
    """An Events API v2 event: the payload goes with a trigger only."""
    event: dict[str, JsonValue] = {
        "routing_key": routing_key,
        "event_action": action.value,
        "dedup_key": _bounded_key(message.dedup_key, PAGERDUTY_DEDUP_KEY_MAX),
    }
    if action is not Action.TRIGGER:
        return event
    details = {
        "kind": message.kind,
        "version": message.version,
        "stage": message.stage,
        "gate": message.gate,
        "detail": message.detail,
        "recipient": message.recipient,
        "link": message.link,
    }
    event["payload"] = {
        "summary": _truncate(message.summary, PAGERDUTY_SUMMARY_MAX),
        "source": message.environment,
        "severity": PAGERDUTY_SEVERITY[message.severity],
        "timestamp": rfc3339(message.created_at),
        "component": message.service,
        "group": message.team,
        "class": message.gate or "deploy",
        "custom_details": {k: v for k, v in details.items() if v is not None},
    }
    return event


def alertmanager_alert(
    message: PageMessage, action: Action, now: datetime, hold: timedelta
) -> dict[str, JsonValue]:
    """One alert of Alertmanager's v2 API; the labels are its identity, so they never vary."""
    starts = message.created_at.astimezone(UTC)
    # Alertmanager resolves an alert without endsAt by itself after its resolve_timeout
    # (5 minutes by default); a page stays firing until we resolve it, so we say until when.
    ends = max(now, starts) if action is Action.RESOLVE else max(now, starts) + hold
    alert: dict[str, JsonValue] = {
        "labels": {
            "alertname": ALERTNAMES[message.kind],
            "team": message.team,
            "service": message.service,
            "environment": message.environment,
            "stage": message.stage,
            "gate": message.gate or "deploy",
            "severity": message.severity,
            "dedup_key": message.dedup_key,
        },
        "annotations": {
            "summary": headline(message),
            "description": _with_link(message.summary, message.link),
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }
    if _is_url(message.link):
        alert["generatorURL"] = message.link
    return alert


def slack_text(message: PageMessage, action: Action) -> str:
    """Slack mrkdwn: `&`, `<` and `>` are escaped, since a detail reads `0.071 > 0.05`."""
    title = _slack_escape(headline(message))
    if action is Action.ACKNOWLEDGE:
        return f":eyes: Acknowledged: {title}"
    if action is Action.RESOLVE:
        return f":white_check_mark: Resolved: {title}"
    icon = ":question:" if message.kind == "decision" else ":rotating_light:"
    lines = [f"{icon} *{title}*", _slack_escape(message.summary)]
    if message.recipient:
        lines.append(f"On call: {_slack_escape(message.recipient)}")
    if message.link not in message.summary:
        shown = (
            f"<{message.link}|see more>"
            if _is_url(message.link)
            else f"`{_slack_escape(message.link)}`"
        )
        lines.append(f"See: {shown}")
    return "\n".join(lines)


def email_message(
    message: PageMessage, action: Action, sender: str, recipients: Sequence[str], now: datetime
) -> EmailMessage:
    """The mail: the headline as subject, the summary and link as body, threaded per page."""
    title = headline(message)
    domain = sender.rpartition("@")[2] or "rollout"
    thread = hashlib.sha256(message.dedup_key.encode()).hexdigest()[:32]
    first = f"<{thread}.trigger@{domain}>"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = email.utils.format_datetime(now.astimezone(UTC))
    # A Message-ID fixed per (page, action): a resend after a lost "250 OK" is the same mail,
    # which mail systems fold into one.
    mail["Message-ID"] = f"<{thread}.{action.value}@{domain}>"
    mail["X-Rollout-Dedup-Key"] = message.dedup_key
    body = _with_link(message.summary, message.link)
    if message.recipient:
        body = f"{body}\n\nOn call: {message.recipient}"
    if action is Action.TRIGGER:
        mail["Subject"] = title
    else:
        verb = "Acknowledged" if action is Action.ACKNOWLEDGE else "Resolved"
        mail["Subject"] = f"{verb}: {title}"
        mail["In-Reply-To"] = first
        mail["References"] = first
        body = f"{verb}.\n\n{body}"
    mail.set_content(body + "\n")
    return mail


@dataclass(frozen=True)
class WebhookChannel:
    """A generic JSON POST: the page's fields plus `action`."""

    url: SecretRef
    timeout: float = 10.0
    name: str = "webhook"

    def deliver(self, message: PageMessage, action: Action) -> None:
        url = _resolve(self.url, self.name)
        body = {"action": action.value, **message.to_json()}
        # Lets a receiver that keeps keys drop a resend whose first answer we never saw; the
        # recipient is part of it, so an escalation to the next person is not taken for one.
        headers = {
            "Idempotency-Key": f"{message.dedup_key}:{action.value}:{message.recipient or 'team'}"
        }
        _post_json(self.name, url, body, self.timeout, _url_secrets(url), headers)


@dataclass(frozen=True)
class PagerDutyChannel:
    """PagerDuty's Events API v2; an acknowledge or resolve names the page by its dedup key."""

    routing_key: SecretRef
    url: str = PAGERDUTY_URL
    timeout: float = 10.0
    name: str = "pagerduty"

    def deliver(self, message: PageMessage, action: Action) -> None:
        key = _resolve(self.routing_key, self.name)
        event = pagerduty_event(message, action, key)
        _post_json(self.name, self.url, event, self.timeout, [key])


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlertmanagerChannel:
    """Alertmanager's v2 API. It has no acknowledgement: silencing is its people's act."""

    url: str | SecretRef  # a plain URL: Alertmanager itself carries no secret
    hold: timedelta = timedelta(days=7)  # how long an unresolved page stays firing
    timeout: float = 10.0
    name: str = "alertmanager"
    now: Callable[[], datetime] = field(default=_utcnow, repr=False, compare=False)

    def deliver(self, message: PageMessage, action: Action) -> None:
        if action is Action.ACKNOWLEDGE:
            return
        base = _resolve(self.url, self.name) if isinstance(self.url, SecretRef) else self.url
        secrets = _url_secrets(base) if isinstance(self.url, SecretRef) else []
        alert = alertmanager_alert(message, action, self.now(), self.hold)
        url = base.rstrip("/") + "/api/v2/alerts"
        _post_json(self.name, url, [alert], self.timeout, secrets)


@dataclass(frozen=True)
class SlackChannel:
    """A Slack incoming webhook; an acknowledge or resolve posts a short follow-up."""

    webhook_url: SecretRef
    timeout: float = 10.0
    name: str = "slack"

    def deliver(self, message: PageMessage, action: Action) -> None:
        url = _resolve(self.webhook_url, self.name)
        body = {"text": slack_text(message, action)}
        _post_json(self.name, url, body, self.timeout, _url_secrets(url))


@dataclass(frozen=True)
class EmailChannel:
    """Mail over SMTP, with optional STARTTLS and login; the password is read when sending."""

    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    username: str | None = None
    password: SecretRef | None = None
    starttls: bool = False
    timeout: float = 30.0
    name: str = "email"
    now: Callable[[], datetime] = field(default=_utcnow, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A tuple, so that the frozen channel really is immutable (and hashable).
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if not self.recipients:
            raise ChannelConfigError("email channel: `to` names no recipient")
        if (self.username is None) != (self.password is None):
            raise ChannelConfigError("email channel: `username` and `password` go together")

    def deliver(self, message: PageMessage, action: Action) -> None:
        password = _resolve(self.password, self.name) if self.password is not None else None
        secrets = [password] if password else []
        where = f"{self.name} via {self.host}:{self.port}"
        mail = email_message(message, action, self.sender, self.recipients, self.now())
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None and password is not None:
                    smtp.login(self.username, password)
                # Recipients refused one by one come back here; the others have the mail, so
                # sending again would page them twice: the page counts as delivered.
                smtp.send_message(mail)
            finally:
                _quit(smtp)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            text = scrub(f"{where}: every recipient refused ({codes})", secrets)
            if codes and all(400 <= code < 500 for code in codes):
                raise RetryableDeliveryError(text) from None
            raise PermanentDeliveryError(text) from None
        except smtplib.SMTPResponseException as error:
            reply = _decode(error.smtp_error)
            text = scrub(f"{where}: {error.smtp_code} {reply}", secrets)
            if 400 <= error.smtp_code < 500:
                raise RetryableDeliveryError(text) from None
            raise PermanentDeliveryError(text) from None
        except smtplib.SMTPNotSupportedError as error:
            text = scrub(f"{where}: {error}", secrets)
            raise PermanentDeliveryError(text) from None
        except ssl.SSLCertVerificationError as error:
            text = f"{where}: TLS certificate not trusted: {error.verify_message}"
            raise PermanentDeliveryError(text) from None
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            # Timeouts, refused connections, dropped sessions, DNS hiccups: all pass.
            detail = scrub(str(error) or type(error).__name__, secrets)
            raise RetryableDeliveryError(f"{where}: {detail}") from None
        except smtplib.SMTPException as error:
            detail = scrub(str(error) or type(error).__name__, secrets)
            raise PermanentDeliveryError(f"{where}: {detail}") from None


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session, whatever the server answers. Not `with smtplib.SMTP(...)`: its exit
    raises when QUIT's reply is not 221, and that exception replaces what happened in the
    session. A server answering QUIT with "250 OK" (or with a reply left unread before it)
    so turned a mail it had accepted into a permanent "250 OK" error."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def channel_from_config(spec: ChannelSpec | Mapping[str, object]) -> Channel:
    """The channel a spec describes; a mapping (a script's, a test's) is read as one first."""
    if isinstance(spec, Mapping):
        spec = read_channel_spec(spec)
    name = spec.name or spec.type
    timeout = spec.timeout.total_seconds()
    match spec:
        case WebhookChannelSpec():
            return WebhookChannel(url=spec.url, timeout=timeout, name=name)
        case PagerDutyChannelSpec():
            return PagerDutyChannel(
                routing_key=spec.routing_key, url=spec.url, timeout=timeout, name=name
            )
        case AlertmanagerChannelSpec():
            return AlertmanagerChannel(url=spec.url, timeout=timeout, name=name)
        case SlackChannelSpec():
            return SlackChannel(webhook_url=spec.webhook_url, timeout=timeout, name=name)
        case EmailChannelSpec():
            return EmailChannel(
                host=spec.host,
                port=spec.port,
                sender=spec.sender,
                recipients=spec.recipients,
                username=spec.username,
                password=spec.password,
                starttls=spec.starttls,
                timeout=timeout,
                name=name,
            )


_CHANNEL_SPEC: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)


def read_channel_spec(data: Mapping[str, object]) -> ChannelSpec:
    """A channel spec from plain data, or a ChannelConfigError naming the field (the fleet
    config reports the same mistakes with its file and line: config/loading.py)."""
    try:
        return _CHANNEL_SPEC.validate_python(data)
    except ValidationError as error:
        raise ChannelConfigError(_first_problem(error, data.get("type"))) from None


def _first_problem(error: ValidationError, kind: object) -> str:
    # Never the input: it may be the very secret that should not be inline.
    problem = error.errors(include_input=False, include_url=False)[0]
    if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"channel: `type` must be one of {', '.join(CHANNEL_TYPES)}, not {kind!r}"
    field = ".".join(str(step) for step in problem["loc"][1:])  # past the union's tag
    if problem["type"] == "extra_forbidden":
        return f"{kind} channel: unknown field `{field}`"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if problem["type"] == "missing":
        message = "is required"
    return f"{kind} channel: `{field}`: {message}" if field else f"{kind} channel: {message}"


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


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
