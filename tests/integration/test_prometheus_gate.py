"""The Prometheus gate against a real Prometheus scraping a test app whose errors we set."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from rollout.domain.gates import Measurement, Outcome
from rollout.drivers import DeployRequest, DeployStatus, Health
from rollout.engine.backends import Backends
from rollout.gates import GateContext
from rollout.gates.prometheus import render_query
from rollout.plan import PrometheusGateSpec
from tests.waiting import wait_for

NOW = datetime(2026, 11, 27, tzinfo=UTC)
# Errors per 1000 requests, per (service, version): each scrape serves 1000 more requests.
ERRORS = {("checkout", "1.0.0"): 10, ("checkout", "2.0.0-rc.bad"): 71}
QUERY = (
    'sum(rate(app_requests_total{service="{service}",version="{version}",code="500"}[5s]))'
    ' / sum(rate(app_requests_total{service="{service}",version="{version}"}[5s]))'
)

# The real gates, as a worker measures with them.
measure = Backends.real("sqlite://", "sqlite://").measure


class _App(BaseHTTPRequestHandler):
    scrapes = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with _App.lock:
            _App.scrapes += 1
            n = _App.scrapes
        lines = ["# TYPE app_requests_total counter"]
        for (service, version), errors in ERRORS.items():
            labels = f'service="{service}",version="{version}"'
            lines.append(f'app_requests_total{{{labels},code="200"}} {n * (1000 - errors)}')
            lines.append(f'app_requests_total{{{labels},code="500"}} {n * errors}')
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "the prometheus binary is not installed: `apt-get install prometheus` "
            "(.ci/run does this); the Prometheus gate is tested against a real server"
        )
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    home = tmp_path_factory.mktemp("prometheus")
    (home / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: app\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{app.server_address[1]}']}}]\n"
    )
    port = _free_port()
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _ready(url), 30, "prometheus to be ready")
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {(home / 'prometheus.log').read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        app.shutdown()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class _NoDriver:
    def start(self, request: DeployRequest) -> None: ...

    def status(self, key: str) -> DeployStatus:
        raise NotImplementedError

    def health(self, environment: str, service: str) -> Health:
        return Health.UNKNOWN

    def transport(self) -> httpx.BaseTransport | None:
        return None


def _context(version: str) -> GateContext:
    return GateContext("checkout", version, "prod-1", "production", _NoDriver())


# The limits every gate spec carries; these tests take one measurement.
LIMITS = {
    "initial_delay_s": 0.0,
    "interval_s": 1.0,
    "failure_limit": 0,
    "inconclusive_limit": 0,
    "consecutive_error_limit": 4,
    "consecutive_successes": None,
    "dry_run": False,
    "count": 1,
}


def _spec(url: str, **extra: Any) -> PrometheusGateSpec:
    return PrometheusGateSpec.model_validate(_fields(url, **extra))


def _fields(url: str, **extra: Any) -> dict[str, Any]:
    return {
        **LIMITS,
        "name": "errors",
        "type": "prometheus",
        "url": url,
        "query": QUERY,
        "success_condition": "value < 0.05",
        "failure_condition": None,
        "value_name": "error_rate",
        "no_data": "error",
        "nan": "error",
        "timeout_s": 5.0,
        **extra,
    }


def _measured(url: str, version: str, **extra: Any) -> Measurement:
    """The first measurement with data: rate() needs two scrapes of the version first."""

    def taken() -> Measurement | None:
        m = measure(_spec(url, **extra), _context(version), NOW)
        return None if m.outcome is Outcome.ERROR and "no data" in m.message else m

    measured = wait_for(taken, 30, f"prometheus to have data for {version}", every=0.2)
    assert measured is not None
    return measured


def test_a_good_version_passes_with_its_measured_rate(prometheus: str) -> None:
    m = _measured(prometheus, "1.0.0")
    assert (m.outcome, m.value, m.condition) == (
        Outcome.SUCCESS,
        "error_rate 0.01",
        "error_rate < 0.05",
    )


def test_a_bad_version_fails_with_value_condition_and_query(prometheus: str) -> None:
    m = _measured(prometheus, "2.0.0-rc.bad")
    assert m.outcome is Outcome.FAILURE
    assert m.value == "error_rate 0.071"
    assert m.message.startswith("error_rate 0.071, wanted error_rate < 0.05 (prometheus: sum(")
    assert 'version="2.0.0-rc.bad"' in m.message


def test_a_failure_condition_decides_first(prometheus: str) -> None:
    m = _measured(prometheus, "2.0.0-rc.bad", failure_condition="error_rate > 0.05")
    assert m.outcome is Outcome.FAILURE
    assert "matches failure condition error_rate > 0.05" in m.message


def test_no_series_follows_the_no_data_policy(prometheus: str) -> None:
    query = 'sum(app_requests_total{service="{service}",version="9.9.9"})'
    for policy, outcome in (("error", Outcome.ERROR), ("pass", Outcome.SUCCESS)):
        m = measure(_spec(prometheus, query=query, no_data=policy), _context("1.0.0"), NOW)
        assert m.outcome is outcome
        assert "the query matched no series" in m.message


def test_nan_follows_its_own_policy(prometheus: str) -> None:
    # A scalar result, and 0/0: what an error ratio gives with no traffic.
    for policy, outcome in (("error", Outcome.ERROR), ("inconclusive", Outcome.INCONCLUSIVE)):
        m = measure(_spec(prometheus, query="0/0", nan=policy), _context("1.0.0"), NOW)
        assert (m.outcome, m.value) == (outcome, "error_rate NaN")


def test_several_series_are_an_error_saying_how_many(prometheus: str) -> None:
    query = 'app_requests_total{service="{service}"}'
    m = _measured(prometheus, "1.0.0", query=query)
    assert m.outcome is Outcome.ERROR
    assert "the query gave 4 series, wanted exactly one" in m.message


def test_a_bad_query_is_an_error_with_prometheus_words(prometheus: str) -> None:
    m = measure(_spec(prometheus, query="sum(rate(oops[5s]"), _context("1.0.0"), NOW)
    assert m.outcome is Outcome.ERROR
    assert "prometheus answered 400: bad_data: " in m.message
    assert "parse error" in m.message


def test_an_unreachable_prometheus_is_an_error() -> None:
    m = measure(_spec("http://127.0.0.1:9"), _context("1.0.0"), NOW)
    assert (m.outcome, m.value) == (Outcome.ERROR, None)
    assert "prometheus not reached" in m.message


def test_placeholders_are_escaped_as_promql_string_content() -> None:
    context = GateContext("checkout", '1.0"} or vector(1) #\\', "prod-1", "p", _NoDriver())
    rendered = render_query('up{version="{version}", env="{environment}"}', context)
    assert rendered == 'up{version="1.0\\"} or vector(1) #\\\\", env="prod-1"}'
