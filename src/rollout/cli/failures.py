"""What the command line says when it cannot run a command: a usage mistake, a setting it
cannot use, or a database it cannot open, each in one line naming the value or the path."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from typer import TyperException

from rollout.quoting import cut, cut_quoted, masked_url, quoted
from rollout.settings import SettingsError, get_settings

# SQLite's words when it cannot open or write the file; PostgreSQL's SQLSTATE and SQLite's
# words for a table that is not there (no schema yet, or an older one).
_CANNOT_WRITE = ("unable to open database file", "readonly database", "disk i/o error")
_NO_TABLE = "42P01"


def usage_problem(error: TyperException) -> str:
    """click's message (which quotes what was typed, so cut), and where the help is."""
    message = cut_quoted(error.format_message()).rstrip(".")
    # Typer checks a value with pydantic, whose message leaves out what was typed.
    cause = error.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        given = quoted(cause.errors()[0].get("input"))
        message += "" if given in message else f", got {given}"
    context = getattr(error, "ctx", None)
    if context is not None:
        message += f" (see `{context.command_path} --help`)"
    return message


def database_problem(error: SQLAlchemyError) -> str:
    """Why the database refused, and what would help: the schema, the file's directory,
    or reaching the server; never a suggestion that cannot help."""
    orig = error.orig if isinstance(error, DBAPIError) else None
    message = cut(str(orig if orig is not None else error).strip().splitlines()[0], 300)
    url = _database_url()
    if getattr(orig, "sqlstate", None) == _NO_TABLE or "no such table" in message:
        return f"database: {message} (is the schema current? run `rollout db upgrade`)"
    cannot_write = any(words in message.lower() for words in _CANNOT_WRITE)
    if url is not None and url.startswith("sqlite") and cannot_write:
        path = Path(make_url(url).database or "")
        return (
            f"cannot open the SQLite database {path}: {message}; this process must be able "
            f"to write to {path.parent} (set ROLLOUT_DATA_DIR or ROLLOUT_DATABASE_URL)"
        )
    where = f" {masked_url(url)}" if url is not None else ""
    if isinstance(error, OperationalError):
        return f"database{where}: {message} (is it reachable?)"
    return f"database{where}: {message}"


def _database_url() -> str | None:
    try:
        return get_settings().resolved_database_url()
    except SettingsError:
        return None
