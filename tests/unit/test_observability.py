"""Observability without services: which exporters the OTEL_* variables choose, that
tracing off is a no-op, and that log lines carry the ids in hand and the trace id."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rollout.observability import logs, metrics, setup, tracing
from rollout.observability.events import _number
from rollout.settings import Settings


@pytest.mark.parametrize(
    ("environ", "chosen"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ["otlp"],
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_the_standard_variables_choose_the_exporters(
    environ: dict[str, str], chosen: list[str]
) -> None:
    assert tracing.exporters_from_environment(environ) == chosen


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "jaeger"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
    ],
)
def test_an_exporter_this_build_lacks_is_refused_by_name(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(tracing.TracingConfigError, match=named):
        tracing.exporters_from_environment(environ)


def test_tracing_off_records_nothing() -> None:
    assert not tracing.enabled()
    with tracing.span("anything", {"rollout.id": 1}) as opened:
        assert opened is None
        assert not trace.get_current_span().get_span_context().is_valid
    with tracing.upgrade_span("step deploy", "00-" + "1" * 32 + "-" + "2" * 16 + "-01", 3, {}):
        assert not trace.get_current_span().get_span_context().is_valid


@pytest.fixture
def traced() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("unit", exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_steps_hang_under_the_upgrade_span_written_after_them(
    traced: InMemorySpanExporter,
) -> None:
    with tracing.span("rollout.submit", {}):
        traceparent = tracing.current_traceparent()
    with tracing.upgrade_span("step deploy", traceparent, 7, {"rollout.upgrade.id": 7}):
        pass
    now = datetime.now(UTC)
    tracing.end_upgrade("upgrade", traceparent, 7, now, now, {})
    submit, step, upgrade = traced.get_finished_spans()
    assert step.parent is not None and upgrade.parent is not None
    assert step.parent.span_id == upgrade.context.span_id
    assert upgrade.parent.span_id == submit.context.span_id
    assert len({s.context.trace_id for s in (submit, step, upgrade)}) == 1


def test_a_rollout_submitted_untraced_still_gets_a_trace_of_its_own() -> None:
    assert not tracing.enabled()
    first, second = tracing.current_traceparent(), tracing.current_traceparent()
    pattern = r"00-[0-9a-f]{32}-[0-9a-f]{16}-01"
    assert re.fullmatch(pattern, first) and re.fullmatch(pattern, second)
    assert first.split("-")[1] != second.split("-")[1]


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("rollout.test", logging.INFO, __file__, 1, message, None, None)
    logs.IdsFilter().filter(record)
    return record


def test_json_lines_carry_the_ids_in_hand_and_the_trace_id(
    traced: InMemorySpanExporter,
) -> None:
    with logs.about(rollout_id=3, upgrade_id=7), tracing.span("step", {}):
        record = _record("gate health failed")
        expected_trace = tracing.trace_id()
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "gate health failed"
    assert (line["rollout_id"], line["upgrade_id"]) == (3, 7)
    assert line["trace_id"] == expected_trace and len(line["trace_id"]) == 32
    text = logs.TextFormatter().format(record)
    assert text.endswith(f"gate health failed [rollout=3 upgrade=7 trace={expected_trace}]")


def test_outside_a_rollout_a_line_carries_no_ids() -> None:
    with logs.about(rollout_id=3):
        pass
    line = json.loads(logs.JsonFormatter().format(_record("tick")))
    assert set(line) == {"time", "level", "logger", "message"}


def test_an_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="xml"):
        logs.configure("xml")


@pytest.mark.parametrize(
    ("value", "number"),
    [("error_rate 0.2", 0.2), ("status 503", 503.0), ("0.5", 0.5), ("ok", None), (None, None)],
)
def test_only_numbers_of_a_measurement_reach_metrics(
    value: str | None, number: float | None
) -> None:
    assert _number(value) == number


def test_a_metrics_port_already_taken_stops_the_process_with_its_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"cannot serve /metrics on port {port}"):
            setup("unit", log_format=None, metrics_port=port)


def test_metrics_listen_on_this_host_only_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    # /metrics has no authentication: every interface would show it to the network.
    served: list[tuple[int, str]] = []
    monkeypatch.setattr(
        metrics, "start_http_server", lambda port, address, **_: served.append((port, address))
    )
    setup("unit", log_format=None, metrics_port=9100)
    assert served == [(9100, "127.0.0.1")]
    assert Settings().metrics_host == "127.0.0.1"
    monkeypatch.setenv("ROLLOUT_METRICS_HOST", "0.0.0.0")
    assert Settings().metrics_host == "0.0.0.0"
