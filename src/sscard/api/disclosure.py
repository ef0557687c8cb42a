"""Every answer of the API shaped for the party that asked (S-1), and its access log.

One mechanism for all routes: ``install(app)`` wraps each route's ASGI app. The
route runs as usual (its response model validated and serialised in full, masked);
then, before a byte leaves, the JSON body is shaped with ``access.disclosure``
for the actor's kind (problem details too, and idempotent replays), and the
inquiry of a person's record is written to the access log in one short transaction
of its own. If that write fails the data is not shown: the answer becomes
``503 access_log_unavailable`` (fail closed).

The log is written after the route's read session has closed, so on SQLite the
read's lock never waits on the log's.
"""

from __future__ import annotations

import json
import logging
import typing
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sscard.access import auth_schemas as logins
from sscard.access.disclosure import (
    ENVELOPES,
    NESTED,
    Resource,
    disclose,
    disclose_anonymous,
    problem,
    subjects,
    visible_fields,
)
from sscard.access.model import Actor
from sscard.accounts import schemas as accounts
from sscard.api import schemas as api
from sscard.api import self_schemas as own
from sscard.audit import schemas as audit
from sscard.audit.access_log import log_inquiries
from sscard.bank import schemas as bank
from sscard.core.errors import DomainError, Forbidden
from sscard.events import schemas as events
from sscard.register.model import OrgKind
from sscard.runtime import Runtime

log = logging.getLogger("sscard.api.disclosure")
R = Resource
PAGES = frozenset(r for r in ENVELOPES if set(ENVELOPES[r]) == {"items", "next"})

# Each response model names the resource it carries.
RESOURCE_OF: dict[type[BaseModel], Resource] = {
    api.PersonRead: R.PERSON,
    api.PersonRecordRead: R.PERSON_RECORD,
    api.ChangeRequestRead: R.CHANGE_REQUEST,
    api.OrganizationRead: R.ORGANIZATION,
    api.UnitRead: R.UNIT,
    api.CardRead: R.CARD,
    api.CardCheckRead: R.CARD_CHECK,
    api.TransitionRead: R.TRANSITION,
    api.FeeRead: R.FEE,
    api.ApplicationRead: R.APPLICATION,
    api.BatchRead: R.BATCH,
    api.SummaryRead: R.SUMMARY,
    api.SummaryLine: R.SUMMARY_LINE,
    api.MeRead: R.ME,
    api.Problem: R.PROBLEM,
    api.CardMoved: R.CARD_MOVED,
    api.Reissue: R.REISSUE,
    api.BatchIssued: R.BATCH_ISSUED,
    api.PersonPage: R.PERSON_PAGE,
    api.CardPage: R.CARD_PAGE,
    api.OrganizationPage: R.ORGANIZATION_PAGE,
    api.SweepRead: R.OPERATIONS,
    api.WorkingDayRead: R.OPERATIONS,
    api.ScheduleRead: R.OPERATIONS,
    api.ClockRead: R.OPERATIONS,
    accounts.ReceiptRead: R.RECEIPT,
    accounts.StatementRead: R.STATEMENT,
    accounts.EntryRead: R.ENTRY,
    accounts.ContributionRead: R.CONTRIBUTION,
    accounts.Done: R.DONE,
    bank.AccountRead: R.BANK_ACCOUNT,
    bank.AccountEventRead: R.BANK_EVENT,
    bank.AccountChanged: R.ACCOUNT_CHANGED,
    bank.AccountDetail: R.ACCOUNT_DETAIL,
    bank.PasswordCheckRead: R.PASSWORD_CHECK,
    own.FullViewRead: R.FULL_VIEW,
    own.AccessLogEntryRead: R.ACCESS_LOG_ENTRY,
    own.AccessLogPage: R.ACCESS_LOG_PAGE,
    own.SelfAccountRead: R.SELF_ACCOUNT,
    logins.SessionRead: R.SESSION,
    logins.SelfRegistrationRead: R.SELF_REGISTRATION,
    logins.TotpEnrolmentRead: R.TOTP_ENROLMENT,
    logins.TotpRead: R.TOTP,
    logins.StaffRead: R.STAFF,
    logins.StaffPage: R.STAFF_PAGE,
    # The bearer value only ever appears in the answer that makes or rotates it.
    logins.CredentialRead: R.CREDENTIAL,
    logins.CredentialSecretRead: R.CREDENTIAL,
    logins.CredentialPage: R.CREDENTIAL_PAGE,
    audit.AuditRecordRead: R.AUDIT_ENTRY,
    audit.AuditRecordPage: R.AUDIT_PAGE,
    audit.VerificationRead: R.VERIFICATION,
    audit.BreakRead: R.CHAIN_BREAK,
    # The signing secret only ever appears in the answer that makes or rotates it.
    events.WebhookRead: R.WEBHOOK,
    events.WebhookSecretRead: R.WEBHOOK,
    events.WebhookList: R.WEBHOOK_LIST,
    events.FailureRead: R.DEAD_LETTER,
    events.FailurePage: R.DEAD_LETTER_PAGE,
    events.RedeliveryRead: R.REDELIVERY,
    events.AttemptRead: R.ATTEMPT,
    events.AttemptPage: R.ATTEMPT_PAGE,
    events.ReplayRead: R.REPLAY,
    events.EventPage: R.EVENT_PAGE,
}

# Reads sent as POST because the number they look up must stay out of URLs.
INQUIRY_POSTS = frozenset(
    {"/persons/search", "/card-checks", "/medical-accounts/inquiries", "/bank/accounts/search"}
)


class Unshaped(DomainError):
    code = "internal_error"
    status = 500
    title = "Internal error"


class AccessLogUnavailable(DomainError):
    code = "access_log_unavailable"
    status = 503
    title = "Access log unavailable"


def resource_of(model: Any) -> Resource | None:
    """The resource of a route's response model (``list[X]``: that of ``X``)."""
    if typing.get_origin(model) is list:
        (model,) = typing.get_args(model)
    return RESOURCE_OF.get(model) if isinstance(model, type) else None


def shape(kind: OrgKind, resource: Resource, data: Any) -> Any:
    """``data`` (an object or a list of them) as a party of ``kind`` may see it."""
    if isinstance(data, list):
        return [shape(kind, resource, item) for item in data]
    if isinstance(data, dict):
        return disclose(kind, resource, data)
    return data


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Disclosure:
    """ASGI middleware: the answer, shaped for its actor and logged, or nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        # The route runs to its end first, read session closed, before anything is sent.
        await self.app(scope, receive, keep)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None:  # pragma: no cover - Starlette always starts a response
            for m in messages:
                await send(m)
            return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        status = int(start["status"])
        if b"json" in ctype and body:
            try:
                status, body = await _shaped(scope, status, body)
            except Exception as exc:  # fail closed: a shaping fault shows nothing
                log.error("shaping failed: %s", type(exc).__name__)
                status, body = _problem(Unshaped("an internal error occurred; nothing was shown"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _shaped(scope: Scope, status: int, body: bytes) -> tuple[int, bytes]:
    data = json.loads(body)
    actor: Actor | None = (scope.get("state") or {}).get("actor")
    if status >= 400:
        return status, _dump(problem(actor.org_kind if actor else None, data))
    route = scope.get("route")
    resource = resource_of(route.response_model) if isinstance(route, APIRoute) else None
    if not isinstance(route, APIRoute) or resource is None or resource is R.OPERATIONS:
        return status, body
    methods = route.methods or set()
    where = f"{sorted(methods)[0] if methods else '?'} {route.path}"
    if actor is None:
        # Only a login answers a caller with no actor yet: their own new session.
        anonymous = disclose_anonymous(resource, data) if isinstance(data, dict) else None
        if anonymous is not None:
            return status, _dump(anonymous)
        log.error("a shaped answer without an actor at %s", where)
        return _problem(Unshaped("an internal error occurred; nothing was shown"))
    shown = NESTED.get(resource, {}).get("items", resource) if resource in PAGES else resource
    if not visible_fields(actor.org_kind, shown):
        return _problem(
            Forbidden(
                f"a {actor.org_kind.value.replace('_', ' ')} is not shown any {shown.value} (S-1)",
                reason="not_disclosed",
            )
        )
    if "GET" in methods or route.path in INQUIRY_POSTS:
        reads = [(r.value, key, value) for r, key, value in subjects(resource, data)]
        if reads:
            rt: Runtime = scope["app"].state.runtime
            try:
                await run_in_threadpool(
                    log_inquiries,
                    rt,
                    actor=actor,
                    action=f"inquiry.{route.name}",
                    route=where,
                    reads=reads,
                )
            except Exception as exc:  # fail closed: no log entry, no data
                log.error("access log write failed at %s: %s", where, type(exc).__name__)
                return _problem(
                    AccessLogUnavailable(
                        "the access log could not be written, so the record is not shown; "
                        "try again shortly"
                    )
                )
    return status, _dump(shape(actor.org_kind, resource, data))


def _problem(error: DomainError) -> tuple[int, bytes]:
    return error.status, _dump(error.as_problem())


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def install(app: FastAPI) -> None:
    """Shape every route's answers for the asking party and log its inquiries."""
    app.add_middleware(Disclosure)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        components = schema.get("components", {}).get("schemas", {})
        for model, res in RESOURCE_OF.items():
            doc = components.get(model.__name__)
            if doc is None or res is R.OPERATIONS:
                continue
            # The full shape stays documented; which fields come back depends on who
            # asks (S-1), so none of them is promised.
            doc.pop("required", None)
            doc["description"] = (
                (doc.get("description", "") + "\n\n").lstrip()
                + f"Fields shown depend on the asking party (S-1, resource '{res.value}'); "
                "hidden fields are absent."
            )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
