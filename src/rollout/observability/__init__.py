"""Observability of rollout's processes: traces (OpenTelemetry), metrics (Prometheus) and
structured logs, set up the same way by the api, worker, ticker and demo commands."""

from __future__ import annotations

import sys

from rollout.observability import logs, metrics, tracing


def setup(
    process: str,
    *,
    log_format: str | None = "text",
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Logs in the format asked for (None: leave logging alone), tracing if
    OTEL_TRACES_EXPORTER asks for it, and /metrics on `metrics_host`:`metrics_port` when a
    port is given (the API serves its own instead). A setting it cannot honour stops the
    process with its reason."""
    if log_format is not None:
        logs.configure(log_format)
    # The ticker's queries run every tick outside any rollout: spans of them would bury
    # the rollouts' traces, so only its task sends are traced.
    try:
        tracing.configure(process, sql=process != "ticker")
    except tracing.TracingConfigError as error:
        sys.exit(f"error: {error}")
    if metrics_port is not None:
        try:
            metrics.serve(metrics_port, metrics_host)
        except OSError as error:  # the port is taken (another worker on this host?)
            sys.exit(
                f"error: cannot serve /metrics on port {metrics_port} of {metrics_host}: "
                f"{error.strerror or error}"
            )
