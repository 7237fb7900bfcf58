"""Air-gapped entry: where an artifact is, how its scanner is called, and the verdict on
what its digest and its scan showed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

# A placeholder is exactly `{name}`; any other brace is text.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
LOCATION_PLACEHOLDERS: tuple[str, ...] = ("service", "version", "environment", "digest")
SCANNER_PLACEHOLDERS: tuple[str, ...] = ("artifact", *LOCATION_PLACEHOLDERS)


class TemplateError(ValueError):
    """A value cannot be placed in a template safely; the message says which and why."""


def _fill(template: str, values: Mapping[str, str], url: bool = False) -> str:
    """One pass over `template`: a filled value is never read as a template itself."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        return quote(value, safe="") if url else value

    return _PLACEHOLDER.sub(replace, template)


def artifact_path(template: str, values: Mapping[str, str]) -> str:
    """The artifact's file: each value must stay one path component, so no version or
    service can lead the check to another file (`..`, a slash, a NUL)."""
    for name, value in values.items():
        if "/" in value or "\0" in value or value in ("", ".", ".."):
            raise TemplateError(f"{name} {value!r} cannot be part of an artifact path")
    return _fill(template, values)


def artifact_url(template: str, values: Mapping[str, str]) -> str:
    """The artifact's URL: each value percent-encoded where it lands."""
    return _fill(template, values, url=True)


def scanner_argv(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """The scanner's argument list: each argument filled on its own, so a value stays one
    inert argument (no shell ever sees it)."""
    if not template:
        raise TemplateError("the scanner command is empty")
    return [_fill(argument, values) for argument in template]


def shown_location(location: str) -> str:
    """A location as a page or `rollout show` may carry it: no credentials, no query."""
    parts = urlsplit(location)
    if parts.scheme not in ("http", "https"):
        return location
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Fetched:
    """What reading the artifact gave: its sha256 (hex) and size, or why it could not."""

    sha256: str | None = None
    size: int = 0
    missing: str | None = None  # not there, too large, refused: the upgrade cannot proceed


@dataclass(frozen=True)
class Scanned:
    """How the scanner ended: its exit code, or why it has none (timed out, could not run)."""

    program: str
    exit_code: int | None
    error: str | None = None


@dataclass(frozen=True)
class EntryVerdict:
    admitted: bool
    reason: str


def judge(expected: str | None, fetched: Fetched, scanned: Scanned | None) -> EntryVerdict:
    """Whether an artifact may enter: its digest must match the release's, and the scanner
    (if any) must exit 0. Every doubt blocks: this is the last check before a network that
    nobody can reach quickly. Reasons carry digests and exit codes, never content."""
    if expected is None:
        return EntryVerdict(
            False, "artifact blocked: the release has no digest to verify (submit with --digest)"
        )
    if fetched.missing is not None:
        return EntryVerdict(False, f"artifact blocked: {fetched.missing}")
    measured = f"sha256:{fetched.sha256}"
    if measured != expected.lower():
        return EntryVerdict(
            False,
            f"artifact blocked: digest mismatch: the artifact is {measured}, "
            f"the release says {expected}",
        )
    if scanned is None:
        return EntryVerdict(True, f"artifact verified: {measured} ({fetched.size} bytes)")
    if scanned.exit_code is None:
        why = scanned.error or "it did not finish"
        return EntryVerdict(False, f"artifact blocked: scanner {scanned.program}: {why}")
    if scanned.exit_code != 0:
        return EntryVerdict(
            False,
            f"artifact blocked: scanner {scanned.program} reported a finding "
            f"(exit code {scanned.exit_code})",
        )
    return EntryVerdict(
        True, f"artifact verified: {measured} ({fetched.size} bytes), scanner {scanned.program} 0"
    )


def needs_scan(expected: str | None, fetched: Fetched) -> bool:
    """The scanner runs only on an artifact whose digest already matched."""
    return (
        expected is not None
        and fetched.missing is None
        and f"sha256:{fetched.sha256}" == expected.lower()
    )
