"""The channels: webhook, PagerDuty, Alertmanager, Slack and email, each delivering one
action of one page."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rollout.paging.channels.formats import (
    alertmanager_alert,
    email_message,
    pagerduty_event,
    slack_text,
)
from rollout.paging.channels.message import (
    Action,
    ChannelConfigError,
    PageMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
    _decode,
    _post_json,
    _resolve,
    _url_secrets,
)
from rollout.plan.channels import (
    PAGERDUTY_URL,
)
from rollout.secrets import SecretRef, scrub


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
