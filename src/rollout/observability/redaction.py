"""The one scrubbing rule for everything rollout writes down (span attributes, log lines):
secrets read from references, credentials in URLs and token-ish query parameters go.

A secret is known because it was read: SecretRef.resolve() remembers each value, so a
webhook URL whose path is the secret (Slack's, a team's hook) is shown as scheme://host/…
wherever it turns up, whichever library wrote it down."""

from __future__ import annotations

import re
import threading
from urllib.parse import SplitResult, urlsplit

HIDDEN = "***"
# Shorter values would match by accident and garble every line (a path of "/").
_SHORTEST = 4

# user:password@ right after a scheme.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)[^/\s@?#]+@")
# name=value where the name looks like it holds a credential: in a URL's query, a request
# target, a bare query string or a form body.
_TOKENISH = re.compile(
    r"(?P<name>(?:^|(?<=[?&;\s]))[\w.-]*"
    r"(?:token|key|secret|passw|pwd|auth|sig|credential|session)[\w.-]*=)"
    r"[^&;\s#\"']+",
    re.IGNORECASE,
)

_known: dict[str, str] = {}  # a secret read in this process → what to show instead
# The same, longest first (a secret URL goes whole before its path alone is looked for);
# rebuilt on the rare remember, read lock-free on every line and span.
_ordered: tuple[tuple[str, str], ...] = ()
_lock = threading.Lock()


def remember(secret: str) -> None:
    """From now on, `secret` is replaced wherever it is scrubbed in this process."""
    if len(secret) < _SHORTEST or secret in _known:
        return
    parts = _url(secret)
    replacements = {secret: _safe_form(parts)}
    if parts is not None:
        # A library may write the URL down re-encoded, or only its path (a request target):
        # the path and query alone give the secret away too.
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        for part in (path_and_query, parts.path, parts.query):
            if len(part) >= _SHORTEST and part not in replacements:
                replacements[part] = f"/{HIDDEN}" if part.startswith("/") else HIDDEN
    global _ordered
    with _lock:
        for value, shown in replacements.items():
            _known.setdefault(value, shown)
        _ordered = tuple(sorted(_known.items(), key=lambda item: len(item[0]), reverse=True))


def _url(secret: str) -> SplitResult | None:
    """The parts of `secret` if it is a URL with a host, else None (it is hidden whole)."""
    if "://" not in secret:
        return None
    try:
        parts = urlsplit(secret)
        _ = parts.port  # a malformed port raises only when asked for
    except ValueError:
        return None
    return parts if parts.hostname else None


def _safe_form(parts: SplitResult | None) -> str:
    if parts is None:
        return HIDDEN
    host = parts.netloc.rpartition("@")[2]  # the host and port, without credentials
    return f"{parts.scheme}://{host}/…"


def text(value: str) -> str:
    """`value` with every known secret, URL credential and token-ish parameter hidden."""
    for secret, shown in _ordered:
        if secret in value:
            value = value.replace(secret, shown)
    value = _USERINFO.sub(rf"\g<scheme>{HIDDEN}@", value)
    return _TOKENISH.sub(rf"\g<name>{HIDDEN}", value)


def forget_all() -> None:
    """Tests start from a process that has read no secret."""
    global _ordered
    with _lock:
        _known.clear()
        _ordered = ()
