"""Every refusal answers {"detail": "one line"}; nothing answers with a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rollout.api.schemas import ErrorOut
from rollout.quoting import cut, cut_quoted

# The application's logger, not this module's: log searches select on the name it had
# before the routes were split out of rollout.api.app.
log = logging.getLogger("rollout.api.app")

# Seconds a client is asked to wait when the database or the broker is unreachable: an
# outage is usually a restart, and retrying sooner only adds to the load once it is back.
RETRY_AFTER = "5"

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": what}
    for code, what in {
        400: "a malformed request",
        401: "no token, or an unknown or revoked one",
        403: "the token's scope, team or services do not allow this",
        404: "no such thing",
        413: "the request body is too large",
        422: "the input breaks a pattern, a limit, or names an unknown field",
    }.items()
}


def conflict(description: str) -> dict[int | str, dict[str, Any]]:
    """The 409 a route documents besides ERRORS: a clash with what is recorded."""
    return {409: {"model": ErrorOut, "description": description}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        # What a refusal quotes back of the input is cut: it may be a pasted 10 kB blob.
        detail = cut_quoted(str(error.detail))
        return JSONResponse({"detail": detail}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(error.errors())}, 422)

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, error: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; try again"},
            503,
            headers={"Retry-After": RETRY_AFTER},
        )


def validation_message(errors: Any) -> str:
    """`body.version: String should match pattern …; query.limit: …`, never the input
    itself (it may be large, or a secret pasted in the wrong field)."""
    parts = []
    for error in errors:
        # A location names fields and parameters the caller sent, unknown ones included.
        where = ".".join(cut(str(p)) for p in error.get("loc", ()))
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "json_invalid":
            message = "malformed JSON"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"
