"""Paging channels against real receivers: HTTP on loopback, aiosmtpd, a real Alertmanager."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from rollout.domain.paging import PageKind
from rollout.paging import (
    Action,
    AlertmanagerChannel,
    ChannelConfigError,
    DeliveryStatus,
    EmailChannel,
    PageMessage,
    PagerDutyChannel,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SecretRef,
    SlackChannel,
    WebhookChannel,
    channel_from_config,
    deliver_with_retries,
    parse_retry_after,
)
from tests.conftest import Mailbox
from tests.waiting import wait_for

CREATED = datetime(2026, 11, 27, 3, 14, 15, tzinfo=UTC)
SUMMARY = (
    "checkout 2.0.0 in prod-eu-1 (production): gate health failed: error_rate 0.071 > 0.05 "
    "(prometheus: …). Rolled back to 1.9.3; rollout halted. see: rollout show 12"
)
# Values that must never show up in an error, a repr or a log line.
ROUTING_KEY = "R0UT1NGKEYdeadbeefcafef00d00000001"
HOOK_TOKEN = "T0000/B0000/XXXXsecrettokenXXXX"
SMTP_PASSWORD = "smtp-pa55word-never-shown"


def page(**changes: Any) -> PageMessage:
    base = PageMessage(
        dedup_key="rollout-12/health/prod-eu-1",
        team="payments",
        severity="P0",
        kind="failure",
        service="checkout",
        version="2.0.0",
        environment="prod-eu-1",
        stage="production",
        gate="health",
        detail="error_rate 0.071 > 0.05",
        summary=SUMMARY,
        recipient="Alice Martin",
        link="rollout show 12",
        created_at=CREATED,
    )
    return replace(base, **changes)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- an HTTP receiver that records every request and answers from a script ---------------

ECHO = b"<echo>"  # answer with what was received: a careless receiver that repeats secrets


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    default: tuple[int, dict[str, str], bytes] = (200, {}, b"ok")
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *responses: tuple[int, dict[str, str], bytes]) -> None:
        self.script.extend(responses)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]


class _Server(ThreadingHTTPServer):
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The timeout test's client hangs up before the answer: expected, not worth a trace.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        raw = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/slow":
            # Holds the answer past the client's timeout; the test releases it.
            receiver.release.wait(10)
        with receiver.lock:
            status, headers, body = receiver.script.pop(0) if receiver.script else receiver.default
            if body == ECHO:
                body = self.path.encode() + b" " + raw
            # Recorded before answering: once the client has its answer, the record is there.
            receiver.requests.append(
                Received(self.path, dict(self.headers.items()), json.loads(raw), status)
            )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.receiver
    server.receiver.release.set()
    server.shutdown()
    server.server_close()


# --- webhook, PagerDuty, Slack: the exact JSON each receiver gets ------------------------


def test_webhook_posts_the_page_and_its_action(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/hooks/{HOOK_TOKEN}")
    channel = channel_from_config({"type": "webhook", "url": {"env": "HOOK_URL"}})

    channel.deliver(page(), Action.TRIGGER)
    channel.deliver(page(), Action.RESOLVE)

    first, second = receiver.requests
    assert first.path == f"/hooks/{HOOK_TOKEN}"
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Idempotency-Key"] == "rollout-12/health/prod-eu-1:trigger:Alice Martin"
    assert first.body == {
        "action": "trigger",
        "dedup_key": "rollout-12/health/prod-eu-1",
        "team": "payments",
        "severity": "P0",
        "kind": "failure",
        "service": "checkout",
        "version": "2.0.0",
        "environment": "prod-eu-1",
        "stage": "production",
        "gate": "health",
        "detail": "error_rate 0.071 > 0.05",
        "summary": SUMMARY,
        "recipient": "Alice Martin",
        "link": "rollout show 12",
        "created_at": "2026-11-27T03:14:15Z",
    }
    assert second.body == {**first.body, "action": "resolve"}
    assert page(kind=PageKind.FAILURE) == page()  # the domain's kinds are accepted as they are
    assert second.headers["Idempotency-Key"] == "rollout-12/health/prod-eu-1:resolve:Alice Martin"


def test_pagerduty_trigger_acknowledge_resolve(receiver: Receiver, tmp_path: Path) -> None:
    receiver.default = (202, {"content-type": "application/json"}, b'{"status":"success"}')
    key_file = tmp_path / "pd"
    key_file.write_text(ROUTING_KEY + "\n")  # as `echo` or a mounted secret leaves it
    channel = channel_from_config(
        {
            "type": "pagerduty",
            "routing_key": {"file": str(key_file)},
            "url": f"{receiver.url}/v2/enqueue",
        }
    )

    for action in Action:
        channel.deliver(page(), action)

    trigger, acknowledge, resolve = receiver.requests
    assert {r.path for r in receiver.requests} == {"/v2/enqueue"}
    assert trigger.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "rollout-12/health/prod-eu-1",
        "payload": {
            "summary": SUMMARY,
            "source": "prod-eu-1",
            "severity": "critical",
            "timestamp": "2026-11-27T03:14:15Z",
            "component": "checkout",
            "group": "payments",
            "class": "health",
            "custom_details": {
                "kind": "failure",
                "version": "2.0.0",
                "stage": "production",
                "gate": "health",
                "detail": "error_rate 0.071 > 0.05",
                "recipient": "Alice Martin",
                "link": "rollout show 12",
            },
        },
    }
    key = "rollout-12/health/prod-eu-1"
    assert acknowledge.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "acknowledge",
        "dedup_key": key,
    }
    assert resolve.body == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}


def test_pagerduty_limits_and_severities(receiver: Receiver) -> None:
    receiver.default = (202, {}, b"{}")
    channel = PagerDutyChannel(
        routing_key=SecretRef(env="ROLLOUT_TEST_PD_KEY"), url=f"{receiver.url}/v2/enqueue"
    )
    long_key = "rollout-12/" + "g" * 300
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLOUT_TEST_PD_KEY", ROUTING_KEY)
        channel.deliver(page(summary="x" * 2000, dedup_key=long_key), Action.TRIGGER)
        channel.deliver(page(dedup_key=long_key), Action.RESOLVE)
        for severity in ("P1", "P2", "P3", "P4"):
            channel.deliver(page(severity=severity, gate=None, kind="decision"), Action.TRIGGER)

    trigger, resolve, *others = receiver.requests
    summary = trigger.body["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")
    assert len(trigger.body["dedup_key"]) == 255
    assert resolve.body["dedup_key"] == trigger.body["dedup_key"]  # same key, every time
    assert [r.body["payload"]["severity"] for r in others] == ["error", "warning", "info", "info"]
    assert {r.body["payload"]["class"] for r in others} == {"deploy"}
    assert "gate" not in others[0].body["payload"]["custom_details"]


def test_slack_posts_escaped_text_and_short_follow_ups(receiver: Receiver, tmp_path: Path) -> None:
    url_file = tmp_path / "slack"
    url_file.write_text(f"{receiver.url}/services/{HOOK_TOKEN}")
    channel = channel_from_config({"type": "slack", "webhook_url": {"file": str(url_file)}})

    channel.deliver(page(), Action.TRIGGER)
    channel.deliver(page(link="https://rollout.example/r/12"), Action.TRIGGER)
    channel.deliver(page(), Action.ACKNOWLEDGE)
    channel.deliver(page(), Action.RESOLVE)

    trigger, with_url, acknowledge, resolve = receiver.requests
    assert trigger.path == f"/services/{HOOK_TOKEN}"
    title = "[P0] checkout 2.0.0 failed gate health in prod-eu-1"
    escaped = SUMMARY.replace(">", "&gt;")
    assert trigger.body == {
        "text": f":rotating_light: *{title}*\n{escaped}\nOn call: Alice Martin",
    }
    assert with_url.body == {
        "text": (
            f":rotating_light: *{title}*\n{escaped}\nOn call: Alice Martin\n"
            "See: <https://rollout.example/r/12|see more>"
        )
    }
    assert acknowledge.body == {"text": f":eyes: Acknowledged: {title}"}
    assert resolve.body == {"text": f":white_check_mark: Resolved: {title}"}


# --- email through a real SMTP server --------------------------------------------------


def _text(part: Any) -> str:
    content: str = part.get_content()
    return content.replace("\r\n", "\n")  # SMTP carries CRLF


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (
        auth_data.login == b"rollout" and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=good, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,  # loopback only; STARTTLS is not what is tested here
    )
    controller.start()
    yield mailbox, port
    controller.stop()


def test_email_arrives_with_subject_and_body(
    smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp
    monkeypatch.setenv("ROLLOUT_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    channel = channel_from_config(
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "from": "rollout@ops.example",
            "to": ["oncall-payments@ops.example", "alice@ops.example"],
            "username": "rollout",
            "password": {"env": "ROLLOUT_TEST_SMTP_PASSWORD"},
        }
    )
    assert isinstance(channel, EmailChannel)

    channel.deliver(page(), Action.TRIGGER)
    channel.deliver(page(link="https://rollout.example/r/12"), Action.RESOLVE)

    wait_for(lambda: len(mailbox.mails) == 2, 10, "both mails to arrive")
    (sender, to, trigger), (_, _, resolve) = mailbox.mails
    assert sender == "rollout@ops.example"
    assert to == ["oncall-payments@ops.example", "alice@ops.example"]
    assert trigger["Subject"] == "[P0] checkout 2.0.0 failed gate health in prod-eu-1"
    assert trigger["X-Rollout-Dedup-Key"] == "rollout-12/health/prod-eu-1"
    body = trigger.get_body()
    assert body is not None
    # The summary already carries its link: it is said once.
    assert _text(body) == f"{SUMMARY}\n\nOn call: Alice Martin\n"
    assert resolve["Subject"] == "Resolved: [P0] checkout 2.0.0 failed gate health in prod-eu-1"
    assert resolve["In-Reply-To"] == trigger["Message-ID"]
    resolve_body = resolve.get_body()
    assert resolve_body is not None
    assert _text(resolve_body) == (
        f"Resolved.\n\n{SUMMARY}\n\nSee: https://rollout.example/r/12\n\nOn call: Alice Martin\n"
    )


def test_email_refused_login_is_permanent_and_hides_the_password(
    smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp
    monkeypatch.setenv("ROLLOUT_TEST_SMTP_PASSWORD", SMTP_PASSWORD + "-wrong")
    channel = EmailChannel(
        host="127.0.0.1",
        port=port,
        sender="rollout@ops.example",
        recipients=["oncall@ops.example"],
        username="rollout",
        password=SecretRef(env="ROLLOUT_TEST_SMTP_PASSWORD"),
    )
    sleeps: list[float] = []

    outcome = deliver_with_retries(channel, page(), Action.TRIGGER, sleep=sleeps.append)

    assert outcome.status is DeliveryStatus.FAILED and outcome.attempts == 1 and sleeps == []
    assert outcome.error is not None and "535" in outcome.error
    assert SMTP_PASSWORD not in f"{outcome!r} {channel!r} {channel}"
    assert mailbox.mails == []


class _SaysOkToQuit(Mailbox):
    """Takes the mail, then answers QUIT with "250 OK" where 221 belongs."""

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def test_email_the_server_accepted_is_delivered_whatever_it_answers_to_quit() -> None:
    # Once recorded as failed for good with the error "250 OK": smtplib's `with` raised on
    # QUIT's reply, and that exception stood for the whole session.
    mailbox = _SaysOkToQuit()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channel = EmailChannel(
            host="127.0.0.1", port=port, sender="r@ops.example", recipients=["a@ops.example"]
        )
        outcome = deliver_with_retries(channel, page(), Action.TRIGGER, attempts=1)
    finally:
        controller.stop()

    assert (outcome.status, outcome.error) == (DeliveryStatus.DELIVERED, None)
    assert len(mailbox.mails) == 1


def test_email_to_a_closed_port_is_retryable() -> None:
    channel = EmailChannel(
        host="127.0.0.1", port=_free_port(), sender="r@ops.example", recipients=["a@ops.example"]
    )
    with pytest.raises(RetryableDeliveryError):
        channel.deliver(page(), Action.TRIGGER)


# --- a real Alertmanager -------------------------------------------------------------


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail(
            "the Alertmanager binary is not installed: `apt-get install prometheus-alertmanager` "
            "(.ci/run does this); the Alertmanager channel is tested against a real server"
        )
    home = tmp_path_factory.mktemp("alertmanager")
    (home / "alertmanager.yml").write_text(
        'route: {receiver: "null"}\nreceivers:\n  - name: "null"\n'
    )
    port = _free_port()
    log = (home / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'alertmanager.yml'}",
            f"--storage.path={home / 'data'}",
            "--cluster.listen-address=",  # no gossip: one server of our own
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _ready(url), 30, "alertmanager ready")
        if process.poll() is not None:
            pytest.fail(f"alertmanager exited: {(home / 'alertmanager.log').read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _alerts(url: str, dedup_key: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{url}/api/v2/alerts", params={"filter": f'dedup_key="{dedup_key}"'}, timeout=5
    )
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def test_alertmanager_fires_and_resolves_a_real_alert(alertmanager: str) -> None:
    message = page(
        dedup_key="rollout-13/health/prod-eu-1",
        created_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    channel = channel_from_config({"type": "alertmanager", "url": alertmanager})

    channel.deliver(message, Action.TRIGGER)

    def active() -> dict[str, Any] | None:
        found = _alerts(alertmanager, message.dedup_key)
        return found[0] if found and found[0]["status"]["state"] == "active" else None

    alert = wait_for(active, 10, "the alert to be active in Alertmanager")
    assert alert is not None
    assert alert["labels"] == {
        "alertname": "RolloutGateFailed",
        "team": "payments",
        "service": "checkout",
        "environment": "prod-eu-1",
        "stage": "production",
        "gate": "health",
        "severity": "P0",
        "dedup_key": "rollout-13/health/prod-eu-1",
    }
    assert alert["annotations"] == {
        "summary": "[P0] checkout 2.0.0 failed gate health in prod-eu-1",
        "description": SUMMARY,
    }
    # It stays firing until we resolve it, not for Alertmanager's 5-minute resolve_timeout.
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert ends > datetime.now(UTC) + timedelta(days=6)

    channel.deliver(message, Action.ACKNOWLEDGE)  # Alertmanager has none: nothing changes
    assert active() is not None

    channel.deliver(message, Action.RESOLVE)
    wait_for(
        lambda: _alerts(alertmanager, message.dedup_key) == [],
        10,
        "the resolved alert to leave Alertmanager's active alerts",
    )


def test_alertmanager_refuses_a_bad_alert_permanently(alertmanager: str) -> None:
    # endsAt before startsAt: Alertmanager answers 400, which no retry can fix.
    clock: Callable[[], datetime] = lambda: datetime(2000, 1, 1, tzinfo=UTC)  # noqa: E731
    channel = AlertmanagerChannel(url=alertmanager, now=clock, hold=timedelta(seconds=-3600))
    sleeps: list[float] = []
    outcome = deliver_with_retries(
        channel,
        page(dedup_key="rollout-14/health/prod-eu-1", created_at=datetime(2000, 1, 1, tzinfo=UTC)),
        Action.TRIGGER,
        sleep=sleeps.append,
    )
    assert outcome.status is DeliveryStatus.FAILED and sleeps == []
    assert outcome.error is not None and "answered 400" in outcome.error


# --- retries ----------------------------------------------------------------------------


@pytest.fixture
def hook(receiver: Receiver, tmp_path: Path) -> Callable[..., WebhookChannel]:
    """A webhook channel to the receiver, its URL read from a file as in production."""

    def make(path: str = "/hook", timeout: float = 10.0) -> WebhookChannel:
        secret = tmp_path / f"hook-{len(list(tmp_path.iterdir()))}"
        secret.write_text(f"{receiver.url}{path}")
        return WebhookChannel(url=SecretRef(file=str(secret)), timeout=timeout)

    return make


def test_retries_through_5xx_and_429_and_delivers_exactly_once(
    receiver: Receiver, hook: Callable[..., WebhookChannel]
) -> None:
    receiver.answer(
        (500, {}, b"boom"),
        (502, {}, b"bad gateway"),
        (503, {}, b"unavailable"),
        (429, {"Retry-After": "1"}, b"slow down"),
        (429, {"Retry-After": "1"}, b"slow down"),
        (200, {}, b"ok"),
    )
    sleeps: list[float] = []

    outcome = deliver_with_retries(hook(), page(), Action.TRIGGER, sleep=sleeps.append)

    assert outcome.status is DeliveryStatus.DELIVERED and outcome.delivered
    assert outcome.attempts == 6
    assert [r.status for r in receiver.requests] == [500, 502, 503, 429, 429, 200]
    assert len(receiver.accepted) == 1
    # Backoff with jitter after the 5xx (0.5s doubling, up to as much again), then exactly
    # what Retry-After asked for.
    assert len(sleeps) == 5
    for n, wait in enumerate(sleeps[:3]):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.5
    assert sleeps[3:] == [1.0, 1.0]


def test_a_400_is_never_retried(receiver: Receiver, hook: Callable[..., WebhookChannel]) -> None:
    receiver.default = (400, {}, b'{"message": "invalid event"}')
    sleeps: list[float] = []

    outcome = deliver_with_retries(hook(), page(), Action.TRIGGER, sleep=sleeps.append)

    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.attempts == 1 and len(receiver.requests) == 1 and sleeps == []
    assert outcome.error is not None and 'answered 400: {"message": "invalid event"}' in (
        outcome.error
    )


def test_gives_up_for_now_and_says_so(
    receiver: Receiver, hook: Callable[..., WebhookChannel]
) -> None:
    receiver.default = (503, {}, b"down")
    sleeps: list[float] = []

    outcome = deliver_with_retries(hook(), page(), Action.TRIGGER, attempts=3, sleep=sleeps.append)

    assert outcome.status is DeliveryStatus.RETRY_LATER
    assert outcome.attempts == 3 and len(receiver.requests) == 3 and len(sleeps) == 2
    assert outcome.retry_after is None


def test_a_retry_after_past_max_wait_is_left_to_the_outbox(
    receiver: Receiver, hook: Callable[..., WebhookChannel]
) -> None:
    receiver.default = (429, {"Retry-After": "120"}, b"")
    sleeps: list[float] = []

    outcome = deliver_with_retries(hook(), page(), Action.TRIGGER, max_wait=60, sleep=sleeps.append)

    assert outcome.status is DeliveryStatus.RETRY_LATER
    assert outcome.attempts == 1 and sleeps == [] and outcome.retry_after == 120.0


def test_retry_after_as_an_http_date(
    receiver: Receiver, hook: Callable[..., WebhookChannel]
) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    receiver.answer((503, {"Retry-After": later}, b""), (200, {}, b"ok"))
    sleeps: list[float] = []

    outcome = deliver_with_retries(hook(), page(), Action.TRIGGER, sleep=sleeps.append)

    assert outcome.delivered and len(sleeps) == 1 and 25 <= sleeps[0] <= 30
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 27 Nov 2026 08:00:07 GMT", now) == 7.0
    assert parse_retry_after("Fri, 27 Nov 2026 07:59:00 GMT", now) == 0.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_a_timeout_is_retryable(receiver: Receiver, hook: Callable[..., WebhookChannel]) -> None:
    channel = hook("/slow", timeout=0.2)
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        channel.deliver(page(), Action.TRIGGER)
    receiver.release.set()


# --- secrets ----------------------------------------------------------------------------


def test_secrets_never_appear_in_errors_or_reprs(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("ROLLOUT_TEST_HOOK", f"{receiver.url}/hooks/{HOOK_TOKEN}?token=qs-secret")
    # A receiver that repeats what it got: the routing key, the webhook's path.
    receiver.default = (400, {}, ECHO)
    pagerduty = channel_from_config(
        {"type": "pagerduty", "routing_key": {"env": "ROLLOUT_TEST_PD_KEY"}, "url": receiver.url}
    )
    webhook = channel_from_config({"type": "webhook", "url": {"env": "ROLLOUT_TEST_HOOK"}})
    slack = channel_from_config({"type": "slack", "webhook_url": {"env": "ROLLOUT_TEST_HOOK"}})
    closed = f"http://127.0.0.1:{_free_port()}/hooks/{HOOK_TOKEN}"
    monkeypatch.setenv("ROLLOUT_TEST_CLOSED", closed)
    unreachable = channel_from_config({"type": "webhook", "url": {"env": "ROLLOUT_TEST_CLOSED"}})

    shown: list[str] = []
    for channel in (pagerduty, webhook, slack, unreachable):
        shown += [repr(channel), str(channel)]
        with pytest.raises((PermanentDeliveryError, RetryableDeliveryError)) as caught:
            channel.deliver(page(), Action.TRIGGER)
        shown += [str(caught.value), repr(caught.value)]
        # No chained httpx error either: it would carry the request, URL and all.
        error = caught.value
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
        outcome = deliver_with_retries(channel, page(), Action.TRIGGER, sleep=lambda _: None)
        shown += [repr(outcome)]
    # The receiver did get them: what it echoed is what the errors had to hide.
    assert any(ROUTING_KEY in json.dumps(r.body) for r in receiver.requests)
    everything = "\n".join(shown)
    for secret in (ROUTING_KEY, HOOK_TOKEN, "qs-secret", "/hooks/"):
        assert secret not in everything
    # What is shown instead: where, without the path.
    assert f"webhook at {receiver.url} answered 400" in everything
    assert "ROLLOUT_TEST_PD_KEY" in repr(pagerduty)


def test_an_unset_secret_is_a_permanent_error_naming_where_it_was_looked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROLLOUT_TEST_NOT_SET", raising=False)
    channel = SlackChannel(webhook_url=SecretRef(env="ROLLOUT_TEST_NOT_SET"))
    with pytest.raises(PermanentDeliveryError, match="environment variable ROLLOUT_TEST_NOT_SET"):
        channel.deliver(page(), Action.TRIGGER)
    missing = SecretRef(file="/nonexistent/rollout/pd")
    with pytest.raises(PermanentDeliveryError, match="file /nonexistent/rollout/pd"):
        PagerDutyChannel(routing_key=missing).deliver(page(), Action.TRIGGER)


# --- config -----------------------------------------------------------------------------


def test_config_never_takes_a_secret_inline_and_names_the_field() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        channel_from_config({"type": "pagerduty", "routing_key": ROUTING_KEY})
    assert "`routing_key`" in str(caught.value) and ROUTING_KEY not in str(caught.value)
    with pytest.raises(ChannelConfigError, match="`webhook_url`"):
        channel_from_config({"type": "slack", "webhook_url": "https://hooks.example/T/B/x"})
    with pytest.raises(ChannelConfigError, match="exactly one of `env` or `file`"):
        channel_from_config({"type": "webhook", "url": {"env": "A", "file": "/b"}})
    with pytest.raises(ChannelConfigError, match="unknown field"):
        channel_from_config({"type": "alertmanager", "url": "http://127.0.0.1:9093", "x": 1})
    with pytest.raises(ChannelConfigError, match="`type` must be one of"):
        channel_from_config({"type": "pager"})
    with pytest.raises(ChannelConfigError, match="`to`"):
        channel_from_config({"type": "email", "host": "h", "port": 25, "from": "a@b", "to": []})
    with pytest.raises(ChannelConfigError, match="`password` go together"):
        channel_from_config(
            {
                "type": "email",
                "host": "h",
                "port": 25,
                "from": "a@b",
                "to": ["c@d"],
                "password": {"env": "P"},
            }
        )


def test_config_builds_each_channel() -> None:
    assert channel_from_config(
        {"type": "pagerduty", "routing_key": {"env": "PD_KEY"}}
    ) == PagerDutyChannel(routing_key=SecretRef(env="PD_KEY"))
    assert channel_from_config(
        {"type": "alertmanager", "url": "http://127.0.0.1:9093"}
    ) == AlertmanagerChannel(url="http://127.0.0.1:9093")
    email_channel = channel_from_config(
        {
            "type": "email",
            "host": "smtp.ops.example",
            "port": 587,
            "from": "rollout@ops.example",
            "to": ["oncall@ops.example"],
            "username": "rollout",
            "password": {"file": "/run/secrets/smtp"},
            "starttls": True,
            "name": "payments-mail",
        }
    )
    assert email_channel == EmailChannel(
        host="smtp.ops.example",
        port=587,
        sender="rollout@ops.example",
        recipients=("oncall@ops.example",),
        username="rollout",
        password=SecretRef(file="/run/secrets/smtp"),
        starttls=True,
        name="payments-mail",
    )
    assert email_channel.name == "payments-mail"
