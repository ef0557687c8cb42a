"""One place renders every refusal as RFC 9457 problem details, shaped for its party."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sscard.access.model import Actor
from sscard.api.disclosure import dump, problem_for
from sscard.core.errors import ConcurrentUpdate, Conflict, DomainError, InvalidInput

log = logging.getLogger("sscard.api")
PROBLEM = "application/problem+json"


class DatabaseUnavailable(DomainError):
    code = "database_unavailable"
    status = 503
    title = "Database unavailable"


def problem(error: DomainError, actor: Actor | None = None) -> Response:
    """``error`` as a problem document for ``actor``'s party (S-1)."""
    headers = {}
    retry = error.extra.get("retry_after")
    if error.status == 503:
        headers["Retry-After"] = str(retry if isinstance(retry, int) else 1)
    body = problem_for(actor, error.as_problem())
    return Response(dump(body), status_code=error.status, media_type=PROBLEM, headers=headers)


def _actor(request: Request) -> Actor | None:
    return getattr(request.state, "actor", None)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _unexpected() -> DomainError:
    err = DomainError("an internal error occurred; nothing was changed")
    err.status, err.code, err.title = 500, "internal_error", "Internal error"
    return err


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return problem(exc, _actor(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
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
        return problem(err, _actor(request))

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> Response:
        return problem(
            ConcurrentUpdate(
                "someone else changed this record at the same moment; reload it and try again"
            ),
            _actor(request),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity conflict: %s", type(exc.orig).__name__)
        return problem(
            Conflict(
                "the change conflicts with a record created at the same moment; reload and retry"
            ),
            _actor(request),
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if not exc.connection_invalidated:
            log.error("database error %s", type(exc.orig).__name__)
            return problem(_unexpected(), _actor(request))
        # The connection was lost (the pool reconnects at the next checkout).
        log.warning("database connection lost: %s", type(exc.orig).__name__)
        return problem(
            DatabaseUnavailable(
                "the database connection was lost; nothing was changed, retry shortly",
                retry_after=1,
            ),
            _actor(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        err = DomainError(str(exc.detail))
        err.status = exc.status_code
        err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        err.title = "Not found" if exc.status_code == 404 else "Request refused"
        return problem(err, _actor(request))

    app.add_middleware(Contain)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Contain:
    """ASGI middleware: an unexpected error becomes a 500 problem, and is logged by type
    and place only, never its message or traceback (they may carry personal data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f"{frame.filename}:{frame.lineno}" if frame else "?"
            log.error("unexpected error %s at %s", type(exc).__name__, where)
            if started:
                return
            response = problem(_unexpected())
            await response(scope, receive, send)
