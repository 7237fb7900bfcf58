"""Prometheus metrics: what the engine did (upgrades, gates, rollbacks, pages) and how late
it did it (queue and ticker lag), served on /metrics by the API, the workers and the ticker.

Labels are names from the fleet config (service, environment, stage, gate, team, channel
type) and enum values: never a reason, a message, a URL or anything else a payload holds.

A prefork worker runs its tasks in pool processes; they share one /metrics through
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR), served by the main process,
so Prometheus scrapes one port per worker however large its pool."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
    values,
)

log = logging.getLogger(__name__)

# Seconds, from a tick to half an hour: lags and delays both fall in here.
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

SUBMISSIONS = Counter(
    "rollout_submissions",
    "Releases submitted through the API, by result (created, same, refused).",
    ["result"],
)
UPGRADES = Counter(
    "rollout_upgrades",
    "Upgrades that reached a final state, by result (that state) and stage.",
    ["result", "stage"],
)
GATE_MEASUREMENTS = Counter(
    "rollout_gate_measurements",
    "Gate measurements taken, by gate, stage and outcome (success, failure, inconclusive, error).",
    ["gate", "stage", "outcome"],
)
# Not by environment: services × environments series (10,000 in the benchmark's fleet) grew
# every worker's memory for the whole run and would cost Prometheus as much. The value in
# each environment is on the measurement's span and in `rollout show`.
GATE_VALUE = Gauge(
    "rollout_gate_value",
    "The value of the latest measurement of a gate of a service in a stage, in whichever "
    "environment measured last (absent for a measurement without a value).",
    ["gate", "service", "stage"],
    multiprocess_mode="mostrecent",
)
ROLLBACKS = Counter(
    "rollout_rollbacks",
    "Upgrades that began rolling back, by stage and cause (failure, or recall).",
    ["stage", "cause"],
)
PAGES = Counter(
    "rollout_pages",
    "Page deliveries by team, severity, channel type and result (delivered, failed; a "
    "delivery retried later counts once per attempt as retrying).",
    ["team", "severity", "channel", "result"],
)
FAILURE_TO_PAGE = Histogram(
    "rollout_failure_to_page_seconds",
    "From the failure recorded to its page delivered (first trigger of each channel).",
    ["team", "severity"],
    buckets=LAG_BUCKETS,
)
QUEUE_LAG = Histogram(
    "rollout_queue_lag_seconds",
    "From a task sent to the broker to a worker starting it, by task.",
    ["task"],
    buckets=LAG_BUCKETS,
)
TICKER_LAG = Histogram(
    "rollout_ticker_lag_seconds",
    "How late the ticker claimed the oldest due row of a tick, by kind of row.",
    ["kind"],
    buckets=LAG_BUCKETS,
)


def seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def use_multiprocess_dir() -> Path:
    """Switch this process (and the ones it forks) to multiprocess mode in an empty
    directory (PROMETHEUS_MULTIPROC_DIR if set, else a fresh temporary one); call before
    any metric has recorded a value."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="rollout-metrics-"))
    if not given:
        atexit.register(_forget, path, os.getpid())
    if path.exists():
        shutil.rmtree(path)  # counts of a previous run must not add to this one's
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    # prometheus_client picked its value class at import; every metric here has labels, so
    # no value exists yet and the children made from now on write to the directory.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def _forget(directory: Path, owner: int) -> None:
    """The worker stopped: its counts go with it (Prometheus keeps what it scraped). Only
    the process that made the directory removes it, never a pool process on its way out."""
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


def serve(port: int, address: str = "127.0.0.1") -> None:
    """Serve /metrics of this process (of all its pool processes in multiprocess mode) on
    a thread of its own. Unauthenticated, so on this host only unless told otherwise."""
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, address, registry=registry)
    log.info("metrics on http://%s:%s/metrics", address, port)


def process_ended(pid: int) -> None:
    """A pool process exited: its live gauges go (counters and histograms are kept)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the text format, and its content type (for the API)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
