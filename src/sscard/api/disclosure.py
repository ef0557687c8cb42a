"""Every answer of the API shaped for the party that asked (S-1), once.

The request's unit (``api.unit``) renders a route's answer to plain data once and hands
it here: ``answer`` keeps only the fields the actor's kind of party may see, masked
where the table says so (``access.disclosure``), and serialises it once. Problem
details are shaped the same way (``problem_for``). Which response model carries which
resource is declared below; only the service's own operations (health, sweeps, the
calendar) answer with models that carry no personal data and are sent as rendered.
"""

from __future__ import annotations

import logging
import typing
from typing import Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel

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
from sscard.bank import schemas as bank
from sscard.core.errors import DomainError, Forbidden
from sscard.events import schemas as events
from sscard.register.model import OrgKind

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


def is_inquiry(method: str, path: str) -> bool:
    """Whether a route reads records (its answers go to the access log)."""
    return method == "GET" or path in INQUIRY_POSTS


def shaped(actor: Actor | None, resource: Resource | None, data: Any, *, where: str) -> Any:
    """``data`` as ``actor`` may see it, or the refusal that replaces it (fail closed)."""
    if resource is None or resource is R.OPERATIONS:
        return data
    if actor is None:
        # Only a login answers a caller with no actor yet: their own new session.
        anonymous = disclose_anonymous(resource, data) if isinstance(data, dict) else None
        if anonymous is not None:
            return anonymous
        log.error("a shaped answer without an actor at %s", where)
        raise Unshaped("an internal error occurred; nothing was shown")
    shown = NESTED.get(resource, {}).get("items", resource) if resource in PAGES else resource
    if not visible_fields(actor.org_kind, shown):
        raise Forbidden(
            f"a {actor.org_kind.value.replace('_', ' ')} is not shown any {shown.value} (S-1)",
            reason="not_disclosed",
        )
    return shape(actor.org_kind, resource, data)


def reads_in(resource: Resource | None, data: Any) -> list[tuple[str, str, int]]:
    """Whose records an answer holds, for the access log."""
    if resource is None or resource is R.OPERATIONS:
        return []
    return [(r.value, key, value) for r, key, value in subjects(resource, data)]


def problem_for(actor: Actor | None, body: dict[str, Any]) -> dict[str, Any]:
    """A problem document as ``actor``'s party may see it."""
    return problem(actor.org_kind if actor else None, body)


def dump(data: Any) -> bytes:
    """JSON bytes, once (orjson: UTF-8, no NaN)."""
    return orjson.dumps(data)


def install(app: FastAPI) -> None:
    """Document that every answer is shaped for the asking party."""
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
