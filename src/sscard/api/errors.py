"""One place renders every refusal as RFC 9457 problem details."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sscard.core.errors import ConcurrentUpdate, Conflict, DomainError, InvalidInput

log = logging.getLogger("sscard.api")
PROBLEM = "application/problem+json"


def problem(error: DomainError) -> JSONResponse:
    return JSONResponse(error.as_problem(), status_code=error.status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = _field(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            err = InvalidInput("the request body is not valid JSON", field="body")
        else:
            err = InvalidInput(f"{field}: {first.get('msg', 'invalid')}", field=field)
        err.extra["errors"] = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
            for e in exc.errors()[:20]
        ]
        return problem(err)

    @app.exception_handler(StaleDataError)
    async def _stale(_: Request, exc: StaleDataError) -> JSONResponse:
        return problem(
            ConcurrentUpdate(
                "someone else changed this record at the same moment; reload it and try again"
            )
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity conflict: %s", type(exc.orig).__name__)
        return problem(
            Conflict(
                "the change conflicts with a record created at the same moment; reload and retry"
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = DomainError(str(exc.detail))
        err.status = exc.status_code
        err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        err.title = "Not found" if exc.status_code == 404 else "Request refused"
        return problem(err)

    @app.middleware("http")
    async def _contain(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Caught here, not by an exception handler, so the server never logs the
        # exception's message or traceback (they may carry personal data).
        try:
            return await call_next(request)
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f"{frame.filename}:{frame.lineno}" if frame else "?"
            log.error("unexpected error %s at %s", type(exc).__name__, where)
            err = DomainError("an internal error occurred; nothing was changed")
            err.status, err.code, err.title = 500, "internal_error", "Internal error"
            return problem(err)
