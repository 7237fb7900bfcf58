"""Traces: one per rollout, from the API call that submitted it to the last page delivered.

A rollout outlives every task that moves it, so the submitting span's W3C traceparent is
stored on the rollout row; each step later starts its span as a child of it, in whichever
process. An upgrade's own span is written when the upgrade ends, under a span id derived
from the trace and the upgrade's id, so that its steps (written earlier, elsewhere) already
named it as their parent.

Every exporter is wrapped so that what leaves the process is scrubbed of secrets (span
attributes, events, links, status): an httpx span's URL may be a team's webhook secret.

Off unless OTEL_TRACES_EXPORTER names an exporter: then every function here returns before
touching OpenTelemetry, and a span costs one flag test."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue

from rollout.observability import redaction

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

EXPORTERS = ("console", "otlp")
_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
# Set while the span of an upgrade is started: the id its steps already point at.
_forced_span_id: ContextVar[int | None] = ContextVar("rollout_forced_span_id", default=None)

# What a span says of the engine's work; a None is left out.
SpanFacts = Mapping[str, AttributeValue | None]


class TracingConfigError(ValueError):
    """OTEL_* asks for something this build cannot do; the message says what."""


def enabled() -> bool:
    return _tracer is not None


def exporters_from_environment(environ: dict[str, str] | None = None) -> list[str]:
    """The exporters OTEL_TRACES_EXPORTER names (comma-separated); none when unset, `none`,
    or OTEL_SDK_DISABLED=true."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n and n != "none"]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: unknown exporter(s) {', '.join(unknown)} "
            f"(this build knows {', '.join(EXPORTERS)} and none)"
        )
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if "otlp" in names and protocol not in ("", "http/protobuf"):
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is supported "
            "(Jaeger and the OpenTelemetry Collector take it on port 4318)"
        )
    return names


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    # Reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure(
    process: str, exporter: SpanExporter | None = None, *, batch: bool = True, sql: bool = True
) -> bool:
    """Start tracing for this process if OTEL_TRACES_EXPORTER asks for it (or `exporter`
    is given, as tests do); instrument SQLAlchemy, httpx and Celery. True when on."""
    global _provider, _tracer
    if _tracer is not None:
        return True
    names = [] if exporter is not None else exporters_from_environment()
    if exporter is None and not names:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # OTEL_SERVICE_NAME, when set, names the process instead (it wins over our default).
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"rollout-{process}"}
    resource = Resource.create(named)
    provider = TracerProvider(resource=resource, id_generator=_RolloutIds())
    for each in [exporter] if exporter is not None else [_exporter(n) for n in names]:
        assert each is not None
        # Batching keeps export off the step's path; it survives Celery's fork (the SDK
        # restarts its thread in the child).
        scrubbed = RedactingExporter(each)
        provider.add_span_processor(
            BatchSpanProcessor(scrubbed) if batch else SimpleSpanProcessor(scrubbed)
        )
    _provider, _tracer = provider, provider.get_tracer("rollout")
    _instrument_libraries(provider, sql)
    log.info("tracing on (%s)", ", ".join(names) or type(exporter).__name__)
    return True


def _instrument_libraries(provider: TracerProvider, sql: bool) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    from rollout.store.database import engine_for, session_factory

    # Engines made before this point would stay uninstrumented: make them anew.
    engine_for.cache_clear()
    session_factory.cache_clear()
    if sql:
        SQLAlchemyInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]


def shutdown() -> None:
    """Flush what is buffered and stop tracing (tests turn it off again with this)."""
    global _provider, _tracer
    if _provider is None:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    celery = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    for instrumentor in (SQLAlchemyInstrumentor(), HTTPXClientInstrumentor(), celery):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    _provider.shutdown()
    _provider, _tracer = None, None
    from rollout.store.database import engine_for, session_factory

    # Engines made while tracing carry its listeners: later callers get fresh ones.
    engine_for.cache_clear()
    session_factory.cache_clear()


def flush() -> None:
    if _provider is not None:
        _provider.force_flush()


def instrument_app(app: Any) -> None:
    """Server spans for the FastAPI app, when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="metrics")


def current_traceparent() -> str:
    """The current span as a W3C traceparent, to store on a rollout. Outside a span (the
    submitter traces nothing) a fresh one: the rollout's steps still form one trace in
    workers that trace, under a root nobody wrote."""
    if _tracer is not None:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        if "traceparent" in carrier:
            return carrier["traceparent"]
    ids = RandomIdGenerator()
    return f"00-{ids.generate_trace_id():032x}-{ids.generate_span_id():016x}-01"


def trace_id() -> str | None:
    """The current trace id in hex, for log lines; None outside a span."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def _rollout_context(traceparent: str | None) -> Context | None:
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


def _upgrade_span_id(trace_id: int, upgrade_id: int) -> int:
    digest = hashlib.blake2b(f"{trace_id:032x}/upgrade/{upgrade_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") or 1


def _upgrade_context(traceparent: str | None, upgrade_id: int) -> Context | None:
    """A context whose parent is the upgrade's span (written when the upgrade ends)."""
    rollout = _rollout_context(traceparent)
    if rollout is None:
        return None
    parent = trace.get_current_span(rollout).get_span_context()
    if not parent.is_valid:
        return None
    upgrade = SpanContext(
        parent.trace_id,
        _upgrade_span_id(parent.trace_id, upgrade_id),
        is_remote=True,
        trace_flags=parent.trace_flags,
    )
    return trace.set_span_in_context(NonRecordingSpan(upgrade))


def _nanos(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1e9)


@contextmanager
def span(
    name: str, attributes: SpanFacts, *, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A span under the current one (None when tracing is off)."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, kind=kind, attributes=_clean(attributes)) as opened:
        yield opened


@contextmanager
def upgrade_span(
    name: str, traceparent: str | None, upgrade_id: int, attributes: SpanFacts
) -> Iterator[Span | None]:
    """A span of one step of an upgrade, child of the upgrade's span in the rollout's trace;
    the task's own span (Celery's) is linked, so both views lead to each other."""
    if _tracer is None:
        yield None
        return
    task = trace.get_current_span().get_span_context()
    links = [trace.Link(task)] if task.is_valid else None
    with _tracer.start_as_current_span(
        name,
        context=_upgrade_context(traceparent, upgrade_id),
        attributes=_clean(attributes),
        links=links,
    ) as opened:
        yield opened


def end_upgrade(
    name: str,
    traceparent: str | None,
    upgrade_id: int,
    started: datetime | None,
    ended: datetime,
    attributes: SpanFacts,
    failed: str | None = None,
) -> None:
    """Write the span of a whole upgrade (or of its rollback), from `started` to `ended`.
    With name "upgrade" it takes the id its steps named as their parent."""
    if _tracer is None:
        return
    rollout = _rollout_context(traceparent)
    if rollout is None:
        return
    context: Context | None = rollout
    if name == "upgrade":
        parent = trace.get_current_span(rollout).get_span_context()
        token = _forced_span_id.set(_upgrade_span_id(parent.trace_id, upgrade_id))
    else:
        token = _forced_span_id.set(None)
        context = _upgrade_context(traceparent, upgrade_id)
    try:
        opened = _tracer.start_span(
            name, context=context, attributes=_clean(attributes), start_time=_nanos(started)
        )
    finally:
        _forced_span_id.reset(token)
    if failed:
        opened.set_status(Status(StatusCode.ERROR, failed))
    opened.end(end_time=_nanos(ended))


def _clean(attributes: SpanFacts) -> dict[str, AttributeValue]:
    return {k: v for k, v in attributes.items() if v is not None}


class _RolloutIds(RandomIdGenerator):
    """Random ids, except the one span id an upgrade's span must take."""

    def generate_span_id(self) -> int:
        forced = _forced_span_id.get()
        return forced if forced is not None else super().generate_span_id()


class RedactingExporter(SpanExporter):
    """Hands `inner` copies of the spans with every string scrubbed. Ended spans are
    immutable, and the instrumentations set URLs before any hook of ours could see the
    errors they record later: the copy on export is the one place that sees everything."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_redacted(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _redacted(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, redaction.text(status.description))
    return ReadableSpan(
        name=redaction.text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_scrubbed(span.attributes),
        events=[Event(e.name, _scrubbed(e.attributes), timestamp=e.timestamp) for e in span.events],
        links=[trace.Link(link.context, _scrubbed(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbed(attributes: Attributes) -> dict[str, AttributeValue]:
    return {key: _scrub(value) for key, value in (attributes or {}).items()}


def _scrub(value: AttributeValue) -> AttributeValue:
    if isinstance(value, str):
        return redaction.text(value)
    if isinstance(value, tuple | list):
        # A sequence attribute is of one type: only strings carry text to scrub.
        return tuple(redaction.text(each) if isinstance(each, str) else each for each in value)
    return value
