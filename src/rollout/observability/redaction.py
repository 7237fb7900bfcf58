"""The one scrubbing rule for everything rollout writes down (span attributes, log lines):
secrets read from references, credentials in URLs and token-ish query parameters go.

A secret is known because it was read: SecretRef.resolve() remembers each value, so a
webhook URL whose path is the secret (Slack's, a team's hook) is shown as scheme://host/…
wherever it turns up, whichever library wrote it down."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

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
_lock = threading.Lock()


def remember(secret: str) -> None:
    """From now on, `secret` is replaced wherever it is scrubbed in this process."""
    if len(secret) < _SHORTEST or secret in _known:
        return
    replacements = {secret: _safe_form(secret)}
    parts = urlsplit(secret) if "://" in secret else None
    if parts is not None and parts.netloc:
        # A library may write the URL down re-encoded, or only its path (a request target):
        # the path and query alone give the secret away too.
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        for part in (path_and_query, parts.path, parts.query):
            if len(part) >= _SHORTEST and part not in replacements:
                replacements[part] = f"/{HIDDEN}" if part.startswith("/") else HIDDEN
    with _lock:
        for value, shown in replacements.items():
            _known.setdefault(value, shown)


def _safe_form(secret: str) -> str:
    parts = urlsplit(secret) if "://" in secret else None
    if parts is None or not parts.hostname:
        return HIDDEN
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}/…"


def text(value: str) -> str:
    """`value` with every known secret, URL credential and token-ish parameter hidden."""
    with _lock:
        known = sorted(_known.items(), key=lambda item: len(item[0]), reverse=True)
    # Longest first, so a secret URL goes whole before its path alone is looked for.
    for secret, shown in known:
        if secret in value:
            value = value.replace(secret, shown)
    value = _USERINFO.sub(rf"\g<scheme>{HIDDEN}@", value)
    return _TOKENISH.sub(rf"\g<name>{HIDDEN}", value)


def forget_all() -> None:
    """Tests start from a process that has read no secret."""
    with _lock:
        _known.clear()
