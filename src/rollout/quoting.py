"""How a message quotes what someone typed: cut to ECHO_MAX characters with an ellipsis, and a
database URL's password masked."""

from __future__ import annotations

import re

# Enough to recognise a value; a message that echoes a pasted 10 kB blob (or a secret in the
# wrong field) whole is no longer one line anyone reads.
ECHO_MAX = 80
ELLIPSIS = "…"

# A quoted value in a message of a library (click's, pydantic's): 'text' or "text".
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
# user:password@ in a URL, however malformed the rest of it.
_USERINFO = re.compile(r"(?P<user>[^:/?#@\s]*):(?P<password>[^/\s]*)@")
_PASSWORD_PARAMETER = re.compile(r"(?P<key>password=)[^&\s]*", re.IGNORECASE)


def cut(text: str, limit: int = ECHO_MAX) -> str:
    """`text` as is when it is short, else its start and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def quoted(value: object) -> str:
    """`value` as a message quotes it: repr, cut."""
    return repr(cut(value)) if isinstance(value, str) else cut(repr(value))


def cut_quoted(message: str) -> str:
    """Every quoted value in a message written elsewhere, cut; the rest left as it is."""
    return _QUOTED.sub(lambda m: m[0][0] + cut(m[0][1:-1]) + m[0][0], message)


def masked_url(url: str) -> str:
    """A URL as a message may show it: its password (in the user part or a `password=`
    parameter) replaced by ***, cut."""
    shown = _USERINFO.sub(lambda m: f"{m['user']}:***@", url, count=1)
    return cut(_PASSWORD_PARAMETER.sub(lambda m: m["key"] + "***", shown))
