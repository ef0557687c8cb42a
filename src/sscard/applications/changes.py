"""ID-4: changes of name or ID number, made at the social insurance agency first."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, RecordScope, require, require_scope
from sscard.access.scoping import record_of_person
from sscard.applications.tables import ChangeRequest
from sscard.audit.service import record
from sscard.core.errors import AlreadyExists, IllegalTransition, InvalidInput, NotFound
from sscard.core.ids import mask_id_number, parse_id_number
from sscard.db.engine import UnitOfWork
from sscard.register.service import clean_name, get_person, has_id_number
from sscard.register.tables import Person
from sscard.runtime import Runtime


class ChangeState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for review
    APPROVED = "approved"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


MOVES = {
    (ChangeState.DRAFT, "submit"): ChangeState.SUBMITTED,
    (ChangeState.DRAFT, "withdraw"): ChangeState.WITHDRAWN,
    (ChangeState.SUBMITTED, "approve"): ChangeState.APPROVED,
    (ChangeState.SUBMITTED, "decline"): ChangeState.DECLINED,
}
FIELDS = ("name", "id_number")


def _move(req: ChangeRequest, action: str) -> ChangeState:
    current = ChangeState(req.state)
    target = MOVES.get((current, action))
    if target is None:
        raise IllegalTransition(
            "change request", current.value, action, [a for (s, a) in MOVES if s == current]
        )
    return target


def get_request(s: Session, request_id: int) -> ChangeRequest:
    req = s.get(ChangeRequest, request_id)
    if req is None:
        raise NotFound(f"no change request with id {request_id}")
    return req


def create_request(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    person_id: int,
    field_name: str,
    new_value: str,
    document: str,
) -> ChangeRequest:
    """Draft a change of name or ID number, keeping the old value."""
    require(actor, "change_requests.create")
    if field_name not in FIELDS:
        raise InvalidInput("field_name must be 'name' or 'id_number' (ID-4)", field="field_name")
    if not (document or "").strip():
        raise InvalidInput(
            "name the supporting document (e.g. household register extract)", field="document"
        )
    s = uow.session
    person = get_person(s, person_id)
    require_scope(actor, "change_requests.create", record_of_person(s, person))
    if field_name == "name":
        value = clean_name(new_value, "new_value")
        old = person.name
    else:
        value = parse_id_number(new_value, today=rt.today(), field="new_value").number
        old = person.id_number
        if s.scalar(select(Person.id).where(has_id_number(value))) is not None:
            raise AlreadyExists("another person already has this ID number", field="new_value")
    if value == old:
        raise InvalidInput("the new value equals the current one", field="new_value")
    req = ChangeRequest(
        person_id=person.id,
        field_name=field_name,
        old_value=old,
        new_value=value,
        document=document.strip(),
        state=ChangeState.DRAFT.value,
        created_at=rt.now(),
        created_by=actor.staff_id,
    )
    s.add(req)
    s.flush()
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="change_request.created",
        subject_type="change_request",
        subject_id=req.id,
        person_id=person.id,
        detail={"field": field_name},
    )
    uow.commit()
    return req


def decide(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    request_id: int,
    action: str,
    reason: str | None = None,
) -> ChangeRequest:
    """Submit, withdraw, approve or decline; approval changes the register (ID-4)."""
    operation = (
        "change_requests.review" if action in ("approve", "decline") else "change_requests.create"
    )
    require(actor, operation)
    s = uow.session
    req = get_request(s, request_id)
    require_scope(
        actor,
        operation,
        RecordScope(what=f"change request with id {request_id}", person_id=req.person_id),
    )
    target = _move(req, action)
    now = rt.now()
    if action == "decline":
        if not (reason or "").strip():
            raise InvalidInput("a declined change request needs a reason", field="reason")
        req.decline_reason = reason
    if action == "submit":
        req.submitted_at = now
    if action in ("approve", "decline"):
        req.decided_at, req.decided_by = now, actor.staff_id
    if action == "approve":
        person = get_person(s, req.person_id)
        if req.field_name == "name":
            person.name = req.new_value
        else:
            if s.scalar(select(Person.id).where(has_id_number(req.new_value))) is not None:
                raise AlreadyExists("another person now has this ID number", field="new_value")
            checked = parse_id_number(req.new_value)
            person.id_number, person.id_kind = checked.number, checked.kind.value
            person.gender, person.birth_date = checked.gender, checked.birth_date
        person.updated_at = now
    req.state = target.value
    detail = {"field": req.field_name}
    if req.field_name == "id_number":
        detail |= {"old": mask_id_number(req.old_value), "new": mask_id_number(req.new_value)}
    record(
        s,
        actor=actor,
        at=now,
        action=f"change_request.{target.value}",
        subject_type="change_request",
        subject_id=req.id,
        person_id=req.person_id,
        detail=detail,
    )
    uow.commit()
    return req
