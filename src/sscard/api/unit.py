"""One request, one unit of work: its transaction, its actor, its answer.

Every route takes the request's unit of work (``Uow``, or ``PublicUow`` where nobody is
logged in yet) and ``UnitRoute`` runs the endpoint inside it, in the worker thread:

1. the bearer value is resolved to the actor in the unit's own transaction, so a
   revoked session or credential is refused at the very next request;
2. a POST carrying an ``Idempotency-Key`` replays the first answer given to that key
   (``db.idempotency``) before anything is done;
3. the endpoint runs its use case with the unit; the use case calls ``commit()`` when
   its change is complete, or just before raising a refusal whose record must stay (a
   counted wrong password);
4. the answer is rendered once, remembered for its key in the same transaction, and
   the transaction commits (one COMMIT); reads run outside any transaction;
5. the answer is shaped for the actor's party (S-1) and serialised once; an answer
   that shows persons' records is written to the access log before it leaves, or the
   record is not shown (503, fail closed).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import inspect
import logging
import typing
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, SecretStr, TypeAdapter

from sscard.access.auth import Authenticated, authenticate_in
from sscard.access.disclosure import Resource
from sscard.access.model import Actor
from sscard.api.disclosure import dump, is_inquiry, problem_for, reads_in, resource_of, shaped
from sscard.audit.access_log import AccessLogUnavailable, InquiryLog
from sscard.core.errors import DomainError, Unauthenticated
from sscard.core.keys import load_key
from sscard.db import idempotency
from sscard.db.engine import UnitOfWork
from sscard.runtime import Runtime

log = logging.getLogger("sscard.api")
PROBLEM = "application/problem+json"
JSON = "application/json"


@cache
def _fingerprint_key() -> bytes:
    return load_key("requests")


class RequestUnit(UnitOfWork):
    """The unit of work of one HTTP request (held: ``UnitRoute`` commits it)."""

    def __init__(
        self,
        rt: Runtime,
        *,
        request: Request,
        public: bool,
    ) -> None:
        super().__init__(rt.session_factory, held=True)
        self.rt = rt
        self.request = request
        self.public = public
        self.read_only = False
        self.authenticated: Authenticated | None = None
        self._actor: Actor | None = None
        # Whose card or form the answer shows, where the use case knew it (access log).
        self.owners: dict[tuple[str, int], int] = {}
        # The access log's entries of an inline read, while the grouped writer commits them.
        self.logged: Future[None] | None = None

    @property
    def actor(self) -> Actor:
        """The authenticated actor (``UnitRoute`` authenticates before the endpoint)."""
        if self._actor is None:
            raise Unauthenticated("this request is not authenticated")
        return self._actor

    @property
    def actor_or_none(self) -> Actor | None:
        return self._actor

    def bearer(self) -> str:
        """The bearer value the request carries, or the refusal that says how to send one."""
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "send 'Authorization: Bearer <token>' with a session token "
                "(POST /auth/sessions), a partner credential or a staff member's token"
            )
        return token.strip()

    def authenticate(self) -> Actor:
        """Resolve the bearer value in this unit's transaction."""
        found = authenticate_in(
            self.session, self.rt, bearer=self.bearer(), source=client_address(self.request)
        )
        self.authenticated, self._actor = found, found.actor
        self.request.state.actor = found.actor
        self.request.state.authenticated = found
        return found.actor

    def open(self, *, read_only: bool, inline: bool = False) -> None:
        """Begin: reads take their session outside any transaction; a use case run on the
        event loop takes the worker's held session (``Runtime.inline``)."""
        self.read_only = read_only
        if inline:
            self._factory = self.rt.inline(read_only=read_only)
        elif read_only:
            self._factory = self.rt.reads()
        self.__enter__()

    def close(self) -> None:
        self.__exit__(None, None, None)


def client_address(request: Request) -> str:
    """Where a request came from, for the audit trail."""
    return request.client.host if request.client else "unknown"


def _unit(request: Request, *, public: bool) -> RequestUnit:
    unit = RequestUnit(request.app.state.runtime, request=request, public=public)
    request.state.unit = unit
    return unit


async def request_unit(request: Request) -> RequestUnit:
    unit = _unit(request, public=False)
    unit.bearer()  # no bearer value at all: refused before the body is even read
    return unit


async def public_unit(request: Request) -> RequestUnit:
    return _unit(request, public=True)


Uow = Annotated[RequestUnit, Depends(request_unit)]
"""The request's unit of work, with its authenticated actor."""
PublicUow = Annotated[RequestUnit, Depends(public_unit)]
"""The request's unit of work where nobody is logged in yet (logins, registration)."""


# Routes that run jobs in transactions of their own: their unit only authenticates, in a
# read, so it never holds a lock the job's transactions would wait for.
OWN_TRANSACTIONS = frozenset({"POST /sweeps"})


def _renderer(model: Any) -> Callable[[Any], Any]:
    """How a route's answer becomes plain JSON data: its response model, once."""
    adapter = TypeAdapter(model) if model is not None else None

    def render(result: Any) -> Any:
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        if adapter is None:
            return result
        if isinstance(result, list) and all(isinstance(r, BaseModel) for r in result):
            return [r.model_dump(mode="json") for r in result]
        return adapter.dump_python(
            adapter.validate_python(result, from_attributes=True), mode="json"
        )

    return render


def _plain(value: Any) -> Any:
    """A body's values as they were sent, secrets included (they are only ever keyed)."""
    if isinstance(value, BaseModel):
        return {name: _plain(v) for name, v in value}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _fingerprint(request: Request, values: dict[str, Any]) -> str:
    """A keyed digest of the request: method, path, query and body. The key keeps a body's
    six-digit password from being guessed from the stored digest."""
    bodies = [_plain(v) for v in values.values() if isinstance(v, BaseModel)]
    message = orjson.dumps(
        [request.method, request.url.path, request.url.query, bodies],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hmac.new(_fingerprint_key(), message, hashlib.sha256).hexdigest()


# The counters' calls: short use cases of a few indexed statements, on held sessions
# (``db.engine.HeldSessions``). Reads run on the worker's event loop itself, holding it
# for their fraction of a millisecond, which costs less than handing each to a thread and
# back; their access-log entries are committed by the grouped writer while the loop goes
# on. A payment ends in a COMMIT that waits for the WAL to reach the disk: it runs on one
# of the worker's few counter threads, so that payments' commits overlap (PostgreSQL
# flushes them together) instead of stopping the loop one after another.
INLINE = frozenset({"/card-checks", "/settlements", "/medical-accounts/inquiries"})
OFF_LOOP = frozenset({"/settlements"})
COUNTER_THREADS = 4


@cache
def _counter_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(COUNTER_THREADS, thread_name_prefix="sscard-counter")


class UnitRoute(APIRoute):
    """A route whose endpoint runs in its request's unit of work (see the module)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            kind = (_OffLoop if path in OFF_LOOP else _Inline) if path in INLINE else _InUnit
            endpoint = functools.wraps(endpoint)(kind(self, endpoint))
        super().__init__(path, endpoint, **kwargs)


class _InUnit:
    """Runs one route's endpoint in the request's unit of work (in the worker thread)."""

    inline = False

    def __init__(self, route: APIRoute, endpoint: Callable[..., Any]) -> None:
        self.route = route
        self.endpoint = endpoint

    @functools.cached_property
    def meta(self) -> _Meta:
        return _Meta.of(self.route)  # read once the route is built (its response model)

    def __call__(self, **values: Any) -> Any:
        uow = next((v for v in values.values() if isinstance(v, RequestUnit)), None)
        if uow is None:
            return self.endpoint(**values)
        uow.open(read_only=self.meta.read_only, inline=self.inline)
        try:
            return self._answer(uow, values)
        finally:
            uow.close()

    def _answer(self, uow: RequestUnit, values: dict[str, Any]) -> Any:
        meta = self.meta
        actor = None if uow.public else uow.authenticate()
        key = _key_of(uow, meta.method, actor) if meta.json else None
        if key is not None and actor is not None and actor.staff_id is not None:
            answer, replayed = idempotency.once(
                uow,
                staff_id=actor.staff_id,
                key=key,
                fingerprint=_fingerprint(uow.request, values),
                now=uow.rt.now(),
                act=lambda: self.endpoint(**values),
                render=meta.render,
                status=meta.status,
            )
            if replayed:
                return self._replay(uow, answer)
            if uow.read_only and not uow.complete:
                uow.finish()
            return self._send(uow, answer.body)
        try:
            result = self.endpoint(**values)
        except DomainError:
            if uow.complete:
                uow.finish()  # a refusal whose record stays (a counted wrong password)
            raise
        if isinstance(result, Response):
            if uow.complete or uow.read_only:
                uow.finish()
            return result
        data = meta.render(result)
        if uow.complete or uow.read_only:
            uow.finish()  # a read ends its session's touch and keeps prepared statements
        return self._send(uow, data)

    def _send(self, uow: RequestUnit, data: Any, status: int | None = None) -> Response:
        meta = self.meta
        actor = uow.actor_or_none
        body = shaped(actor, meta.resource, data, where=meta.where)
        if meta.read_only and actor is not None:
            reads = reads_in(meta.resource, data)
            if reads:
                inquiries: InquiryLog = uow.request.app.state.inquiries
                # Inline, the event loop goes on serving while the grouped writer commits
                # this request's entries with others'; the answer leaves once they are in.
                grouped = self.inline and inquiries.grouped
                uow.logged = (inquiries.submit if grouped else inquiries.write)(
                    actor=actor,
                    action=f"inquiry.{meta.name}",
                    route=meta.where,
                    reads=reads,
                    owners=uow.owners,
                )
        return Response(dump(body), status_code=status or meta.status, media_type=JSON)

    def _replay(self, uow: RequestUnit, first: idempotency.Answer) -> Response:
        headers = {"Idempotent-Replayed": "true"}
        if first.status >= 400:
            body = problem_for(uow.actor_or_none, first.body)
            return Response(dump(body), first.status, headers=headers, media_type=PROBLEM)
        data = first.body
        if isinstance(data, dict) and "replayed" in data:
            data = {**data, "replayed": True}
        response = self._send(uow, data, first.status)
        response.headers.update(headers)
        return response


class _Inline(_InUnit):
    """The same, on the event loop's own thread (``INLINE``)."""

    inline = True
    off_loop = False

    async def __call__(self, **values: Any) -> Any:
        if self.off_loop:
            run = functools.partial(super().__call__, **values)
            answer = await asyncio.get_running_loop().run_in_executor(_counter_threads(), run)
        else:
            answer = super().__call__(**values)
        uow = next((v for v in values.values() if isinstance(v, RequestUnit)), None)
        if uow is not None and uow.logged is not None:
            inquiries: InquiryLog = uow.request.app.state.inquiries
            try:
                await asyncio.wait_for(asyncio.wrap_future(uow.logged), inquiries.wait_seconds)
            except Exception:  # fail closed: the record is not shown unless logged
                raise AccessLogUnavailable from None
        return answer


class _OffLoop(_Inline):
    """The same, on one of the worker's counter threads (``OFF_LOOP``)."""

    off_loop = True


@dataclass(frozen=True)
class _Meta:
    """What the unit needs to know of a route."""

    method: str
    where: str
    name: str
    status: int
    read_only: bool
    resource: Resource | None
    render: Callable[[Any], Any]
    json: bool  # its answers are JSON data (not a Response of its own, e.g. an image)

    @classmethod
    def of(cls, route: APIRoute) -> _Meta:
        methods = route.methods or {"GET"}
        method = "GET" if "GET" in methods else sorted(methods)[0]
        where = f"{method} {route.path}"
        return cls(
            method=method,
            where=where,
            name=route.name,
            status=int(route.status_code or 200),
            read_only=is_inquiry(method, route.path) or where in OWN_TRANSACTIONS,
            resource=resource_of(route.response_model),
            render=_renderer(route.response_model),
            json=not _returns_response(route.endpoint),
        )


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    answer = inspect.signature(endpoint, eval_str=True).return_annotation
    kinds = typing.get_args(answer) or (answer,)
    return any(isinstance(k, type) and issubclass(k, Response) for k in kinds)


def _key_of(uow: RequestUnit, method: str, actor: Actor | None) -> str | None:
    """The request's Idempotency-Key, where one applies: a staff member's POST."""
    key = uow.request.headers.get(idempotency.HEADER)
    if key is None or method != "POST" or actor is None or actor.staff_id is None:
        return None
    return idempotency.checked_key(key)
