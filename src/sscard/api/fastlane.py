"""The counters' calls straight to their endpoint, past the framework's per-request work.

A card check, a payment or a Q-1 inquiry is a few indexed statements; the web framework's
routing, dependency solving and exit stacks cost as much again. ``FastLane`` (an ASGI
middleware) takes the requests of ``api.unit.INLINE`` routes whose body is JSON and runs
the same route the same way, with FastAPI's own validation of the body and headers
(``ModelField.validate``, hence the same 422 problems), the same dependency building the
request's unit, the same endpoint (``UnitRoute``'s, which authenticates, keeps the
Idempotency-Key, shapes and logs), and the app's own exception handlers. Anything else
(another content type, another route) goes the usual way. The OpenAPI document is the
framework's, from the same routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from sscard.api.unit import INLINE, RequestUnit, request_unit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_BODY = 64 * 1024  # a counter's call is a few hundred bytes; larger ones go the usual way


@dataclass(frozen=True)
class _Lane:
    """What one route needs to be called without the framework's request handling."""

    route: APIRoute
    body: Any  # the ModelField of its JSON body
    body_name: str
    unit_name: str
    headers: tuple[Any, ...]  # ModelFields of its header parameters

    @classmethod
    def of(cls, route: APIRoute) -> _Lane | None:
        dependant = route.dependant
        units = [d for d in dependant.dependencies if d.call is request_unit]
        if (
            route.body_field is None
            or len(dependant.body_params) != 1
            or len(units) != 1
            or units[0].name is None
            or dependant.path_params
            or dependant.query_params
            or dependant.cookie_params
            or len(dependant.dependencies) != 1
        ):
            return None  # not a shape this lane knows: the framework serves it
        return cls(
            route=route,
            body=route.body_field,
            body_name=dependant.body_params[0].name,
            unit_name=units[0].name,
            headers=tuple(dependant.header_params),
        )


def _is_json(content_type: bytes) -> bool:
    main = content_type.split(b";", 1)[0].strip().lower()
    return main == b"application/json" or (
        main.startswith(b"application/") and main.endswith(b"+json")
    )


class FastLane:
    """ASGI middleware: ``INLINE`` routes with a JSON body, served directly."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self._lanes: dict[tuple[str, str], _Lane] | None = None

    def lanes(self) -> dict[tuple[str, str], _Lane]:
        if self._lanes is None:
            found: dict[tuple[str, str], _Lane] = {}
            for route in self.fastapi.routes:
                if isinstance(route, APIRoute) and route.path in INLINE:
                    lane = _Lane.of(route)
                    if lane is not None:
                        for method in route.methods or ():
                            found[(method, route.path)] = lane
            self._lanes = found
        return self._lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = (
            self.lanes().get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if lane is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        if not _is_json(headers.get(b"content-type", b"")):
            await self.app(scope, receive, send)
            return
        chunks, whole = await _body(receive)
        if not whole:  # larger than a counter's call: the framework reads and answers it
            await self.app(scope, _replay(chunks, then=receive), send)
            return
        body = b"".join(chunks)
        request = Request(scope, _replay([body]))
        try:
            response = await self._call(lane, request, body)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    async def _call(self, lane: _Lane, request: Request, body: bytes) -> Response:
        errors: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        unit: RequestUnit = await request_unit(request)  # no bearer value: refused first
        values[lane.unit_name] = unit
        for field in lane.headers:
            name = field.alias or field.name
            raw = request.headers.get(name)
            if raw is None and not field.field_info.is_required():
                values[field.name] = field.get_default()
                continue
            value, problems = field.validate(raw, {}, loc=("header", name))
            errors += problems
            values[field.name] = value
        if not body:
            errors.append({"type": "missing", "loc": ("body",), "msg": "Field required"})
        else:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error"}]
                ) from None
            value, problems = lane.body.validate(parsed, {}, loc=("body",))
            errors += problems
            values[lane.body_name] = value
        if errors:
            raise RequestValidationError(errors)
        response: Response = await lane.route.endpoint(**values)
        if not isinstance(response, Response):  # pragma: no cover - UnitRoute answers Responses
            raise TypeError("an inline route answered without a Response")
        return response

    def _handler(self, exc: Exception) -> Any:
        handlers = self.fastapi.exception_handlers
        for kind in type(exc).__mro__:
            if kind in handlers and kind is not Exception:
                return handlers[kind]
        return None


async def _body(receive: Receive) -> tuple[list[bytes], bool]:
    """The request body's chunks as read, and whether that is all of it (not past
    ``MAX_BODY``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return chunks, True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return chunks, True
        if size > MAX_BODY:
            return chunks, False


def _replay(chunks: list[bytes], *, then: Receive | None = None) -> Receive:
    """A ``receive`` that hands out the chunks already read, then the rest (``then``)."""
    pending = list(chunks)

    async def receive() -> Message:
        if pending:
            return {
                "type": "http.request",
                "body": pending.pop(0),
                "more_body": bool(pending) or then is not None,
            }
        if then is not None:
            return await then()
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive
