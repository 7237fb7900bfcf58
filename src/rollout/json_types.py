"""JSON as it is read from or written to the wire or a file: typed values, never Any."""

from __future__ import annotations

from pydantic import JsonValue

__all__ = ["JsonObject", "JsonValue"]

JsonObject = dict[str, JsonValue]
