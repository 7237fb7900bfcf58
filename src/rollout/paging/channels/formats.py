"""A page in each receiver's exact shape: a PagerDuty event, an Alertmanager alert, a
Slack text, an email."""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from pydantic import JsonValue

from rollout.paging.channels.message import (
    Action,
    PageMessage,
    _bounded_key,
    _is_url,
    _truncate,
    _with_link,
    headline,
    rfc3339,
)

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


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
