"""Structured logs: every line written while a rollout's work is in hand carries its rollout
and upgrade ids and the trace id; ROLLOUT_LOG_FORMAT=json writes one JSON object a line.
Every line is scrubbed of secrets (rollout.observability.redaction) as it is formatted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from rollout.observability import redaction, tracing

FORMATS = ("text", "json")
_ids: ContextVar[dict[str, int]] = ContextVar("rollout_log_ids", default={})  # noqa: B039
# The fields a record may carry beside its message, in the order a text line shows them.
FIELDS = ("rollout_id", "upgrade_id", "page_id", "delivery_id", "trace_id")


@contextmanager
def about(**ids: int | None) -> Iterator[None]:
    """Lines logged inside are about these (rollout_id=…, upgrade_id=…)."""
    token = _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


class IdsFilter(logging.Filter):
    """Puts the ids in hand and the trace id on each record (as attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _ids.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        if not hasattr(record, "trace_id"):
            record.trace_id = tracing.trace_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redaction.text(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = redaction.text(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # The whole line, traceback included: an exception's message may quote a URL.
        text = redaction.text(super().format(record))
        extra = [
            f"{name.removesuffix('_id')}={value}"
            for name in FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        if not extra:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{' '.join(extra)}]{newline}{rest}"


def configure(log_format: str = "text", level: str | int = "INFO") -> None:
    """One handler on the root logger, to stderr, in the format asked for."""
    if log_format not in FORMATS:
        raise ValueError(f"ROLLOUT_LOG_FORMAT: {log_format!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(IdsFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_rollout", False)]:
        root.removeHandler(old)
    handler._rollout = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request's URL at INFO: a page channel's URL can be its secret (Slack
    # and webhook URLs carry tokens), and a gate's URL is the environment's business.
    logging.getLogger("httpx").setLevel(logging.WARNING)
