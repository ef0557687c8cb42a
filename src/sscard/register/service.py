"""Use cases of the register: organizations, units, persons, staff."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sscard.access.model import NEEDS_AUTHORISATION, Actor, Service, require, require_scope
from sscard.access.scoping import record_of_person
from sscard.access.tables import Staff
from sscard.applications.model import choose_bank
from sscard.audit.service import record
from sscard.core.errors import AlreadyExists, InvalidInput, NotFound
from sscard.core.ids import parse_id_number, parse_uscc
from sscard.core.pagination import Page
from sscard.core.policy import RegionPolicy, UnitKind
from sscard.core.protect import ID_NUMBER, SOCIAL
from sscard.db.engine import UnitOfWork
from sscard.db.paging import page_by_id
from sscard.db.types import matches
from sscard.register.model import MedicalScheme, OldCardState, OrgKind, PersonStatus, RecordKind
from sscard.register.tables import Organization, Person, PersonRecord, Unit
from sscard.runtime import Runtime

PHONE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")
ORG_CODE = re.compile(r"^[A-Za-z0-9_-]{2,32}$")


def _enum(kind: type[Any], value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(
            f"'{value}' is not a valid {field}; use one of " + ", ".join(m.value for m in kind),
            field=field,
        ) from None


def clean_name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput(f"{field} must be 1 to 100 characters", field=field)
    return name


def clean_phone(phone: str | None) -> str | None:
    if phone is None or phone == "":
        return None
    phone = phone.strip()
    if not PHONE.match(phone):
        raise InvalidInput(
            "phone must be an 11-digit mobile number (13x-19x) or an area-code landline",
            field="phone",
        )
    return phone


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- organizations


def sync_banks(session: Session, policy: RegionPolicy, *, actor: Actor, now: Any) -> None:
    """Make the register's issuing banks those the policy lists (B-1)."""
    existing = {
        o.code: o
        for o in session.scalars(select(Organization).where(Organization.kind == OrgKind.BANK))
    }
    for bank in policy.banks:
        org = existing.get(bank.code)
        if org is None:
            org = Organization(
                kind=OrgKind.BANK,
                code=bank.code,
                name=bank.name,
                bank_code=bank.code,
                created_at=now,
            )
            session.add(org)
            session.flush()
            record(
                session,
                actor=actor,
                at=now,
                action="bank.registered",
                subject_type="organization",
                subject_id=org.id,
                detail={"code": bank.code},
            )
        elif org.name != bank.name:
            org.name = bank.name


def org_by_code(session: Session, code: str, *, kind: OrgKind | None = None) -> Organization:
    org = session.scalar(select(Organization).where(Organization.code == code))
    if org is None or (kind is not None and org.kind != kind):
        what = kind.value.replace("_", " ") if kind else "organization"
        raise NotFound(f"no {what} with code '{code}'", field="code")
    return org


def org_by_id(session: Session, org_id: int, *, kind: OrgKind | None = None) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or (kind is not None and org.kind != kind):
        what = kind.value.replace("_", " ") if kind else "organization"
        raise NotFound(f"no {what} with id {org_id}")
    return org


def create_organization(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    kind: str,
    code: str,
    name: str,
    parent_code: str | None = None,
    address: str | None = None,
) -> Organization:
    """Register an outlet, service point, hospital, pharmacy, studio or other party."""
    require(actor, "organizations.write")
    org_kind: OrgKind = _enum(OrgKind, kind, "kind")
    if org_kind in (OrgKind.BANK, OrgKind.UNIT):
        raise InvalidInput(
            "banks come from the region policy and units are registered with their USCC "
            "(POST /units)",
            field="kind",
        )
    if org_kind is OrgKind.CARDHOLDER:
        raise InvalidInput(
            "a cardholder is a person, not an organization: register them with POST /persons",
            field="kind",
        )
    if not ORG_CODE.match(code or ""):
        raise InvalidInput("code must be 2-32 letters, digits, '-' or '_'", field="code")
    s = uow.session
    now = rt.now()
    parent_id = None
    bank_code = None
    if org_kind is OrgKind.OUTLET:
        if not parent_code:
            raise InvalidInput("an outlet needs parent_code: its bank's code", field="parent_code")
        bank = org_by_code(s, parent_code, kind=OrgKind.BANK)
        parent_id, bank_code = bank.id, bank.code
    elif parent_code:
        parent_id = org_by_code(s, parent_code).id
    if s.scalar(select(Organization.id).where(Organization.code == code)) is not None:
        raise AlreadyExists(f"an organization with code '{code}' exists", field="code")
    org = Organization(
        kind=org_kind,
        code=code,
        name=clean_name(name),
        parent_id=parent_id,
        bank_code=bank_code,
        address=address,
        created_at=now,
    )
    s.add(org)
    s.flush()
    record(
        s,
        actor=actor,
        at=now,
        action="organization.registered",
        subject_type="organization",
        subject_id=org.id,
        detail={"kind": org_kind.value, "code": code},
    )
    uow.commit()
    return org


def granted(session: Session, actor: Actor) -> list[str]:
    """The services the actor's organization is authorised for (asked of the database only
    for the kinds that need an authorisation at all)."""
    if actor.org_id is None or actor.org_kind not in NEEDS_AUTHORISATION:
        return []
    org = session.get(Organization, actor.org_id)
    return list(org.authorisations or []) if org else []


def authorise(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, org_id: int, service: str, granted: bool
) -> Organization:
    """P-3: the center extends a service to a pharmacy or platform, or withdraws it."""
    require(actor, "organizations.authorise")
    what: Service = _enum(Service, service, "service")
    s = uow.session
    org = org_by_id(s, org_id)
    if OrgKind(org.kind) not in NEEDS_AUTHORISATION:
        raise InvalidInput(
            f"a {org.kind.replace('_', ' ')} needs no authorisation; only pharmacies and "
            "grassroots platforms do",
            field="org_id",
        )
    current = set(org.authorisations or [])
    org.authorisations = sorted(current | {what.value} if granted else current - {what.value})
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="organization.authorised" if granted else "organization.authorisation_withdrawn",
        subject_type="organization",
        subject_id=org.id,
        detail={"service": what.value},
    )
    uow.commit()
    return org


def create_unit(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    code: str,
    name: str,
    uscc: str,
    unit_kind: str = "ordinary",
) -> tuple[Organization, Unit]:
    """Register an insured unit with its Unified Social Credit Code."""
    require(actor, "register.write")
    kind: UnitKind = _enum(UnitKind, unit_kind, "unit_kind")
    checked = parse_uscc(uscc)
    if not ORG_CODE.match(code or ""):
        raise InvalidInput("code must be 2-32 letters, digits, '-' or '_'", field="code")
    s = uow.session
    if s.scalar(select(Unit.org_id).where(Unit.uscc == checked)) is not None:
        raise AlreadyExists(f"a unit with USCC {checked} is registered", field="uscc")
    if s.scalar(select(Organization.id).where(Organization.code == code)) is not None:
        raise AlreadyExists(f"an organization with code '{code}' exists", field="code")
    now = rt.now()
    org = Organization(kind=OrgKind.UNIT, code=code, name=clean_name(name), created_at=now)
    s.add(org)
    s.flush()
    unit = Unit(org_id=org.id, uscc=checked, unit_kind=kind)
    s.add(unit)
    record(
        s,
        actor=actor,
        at=now,
        action="unit.registered",
        subject_type="organization",
        subject_id=org.id,
        detail={"uscc": checked, "unit_kind": kind.value},
    )
    uow.commit()
    return org, unit


def unit_of(session: Session, org_id: int) -> Unit:
    unit = session.get(Unit, org_id)
    if unit is None:
        raise NotFound(f"no unit with id {org_id}")
    return unit


def sign_agreement(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, unit_id: int, bank_code: str
) -> Unit:
    """B-2: the unit signs a card-issuing agreement with one bank, under the forcing rule."""
    require(actor, "units.agreement")
    s = uow.session
    unit = unit_of(s, unit_id)
    if actor.org_kind in (OrgKind.BANK, OrgKind.OUTLET) and actor.bank_code != bank_code:
        raise InvalidInput(
            f"{actor.org_code} can sign agreements for its own bank only", field="bank_code"
        )
    choose_bank(rt.policy, bank_code, unit_kind=UnitKind(unit.unit_kind), scheme=None)
    now = rt.now()
    previous = unit.agreement_bank_code
    unit.agreement_bank_code = bank_code
    unit.agreement_signed_at = now
    record(
        s,
        actor=actor,
        at=now,
        action="unit.agreement_signed",
        subject_type="organization",
        subject_id=unit.org_id,
        detail={"bank_code": bank_code, "previous": previous},
    )
    uow.commit()
    return unit


# ---------------------------------------------------------------- persons


@dataclass(frozen=True)
class PersonInput:
    id_number: str
    name: str
    status: str = "employed"
    phone: str | None = None
    unit_code: str | None = None
    medical_scheme: str = "employee"
    insured_since: date | None = None
    old_medical_card_no: str | None = None


def check_person(data: PersonInput, *, today: date) -> dict[str, Any]:
    """Validate one person's data and return column values (no unit lookup)."""
    checked = parse_id_number(data.id_number, today=today)
    status: PersonStatus = _enum(PersonStatus, data.status, "status")
    scheme: MedicalScheme = _enum(MedicalScheme, data.medical_scheme, "medical_scheme")
    if data.insured_since is not None and data.insured_since > today:
        raise InvalidInput("insured_since cannot be in the future", field="insured_since")
    old_card = (data.old_medical_card_no or "").strip() or None
    return {
        "id_number": checked.number,
        "id_kind": checked.kind.value,
        "gender": checked.gender,
        "birth_date": checked.birth_date,
        "name": clean_name(data.name),
        "status": status.value,
        "phone": clean_phone(data.phone),
        "medical_scheme": scheme.value,
        "insured_since": data.insured_since,
        "old_medical_card_no": old_card,
        "old_medical_card_state": (OldCardState.NORMAL if old_card else OldCardState.NONE).value,
    }


def register_person(uow: UnitOfWork, rt: Runtime, *, actor: Actor, data: PersonInput) -> Person:
    """Register an insured person (ID-1 to ID-3)."""
    require(actor, "register.write")
    values = check_person(data, today=rt.today())
    s = uow.session
    unit_org_id = None
    if data.unit_code:
        unit_org_id = org_by_code(s, data.unit_code, kind=OrgKind.UNIT).id
    if s.scalar(select(Person.id).where(has_id_number(values["id_number"]))) is not None:
        raise AlreadyExists("a person with this ID number is registered", field="id_number")
    now = rt.now()
    person = Person(**values, unit_org_id=unit_org_id, created_at=now, updated_at=now)
    s.add(person)
    try:
        s.flush()
    except IntegrityError:
        raise AlreadyExists(
            "a person with this ID number is registered", field="id_number"
        ) from None
    record(
        s,
        actor=actor,
        at=now,
        action="person.registered",
        subject_type="person",
        subject_id=person.id,
        person_id=person.id,
        detail={"id_kind": values["id_kind"], "unit_org_id": unit_org_id},
    )
    uow.commit()
    return person


def has_id_number(number: str) -> ColumnElement[bool]:
    """The persons whose ID number is ``number``, through its blind index."""
    return matches(Person.id_number_hash, SOCIAL, ID_NUMBER, number)


def get_person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    return person


def find_person(session: Session, id_number: str) -> Person:
    number = parse_id_number(id_number).number
    person = session.scalar(select(Person).where(has_id_number(number)))
    if person is None:
        raise NotFound("no person with this ID number is registered", field="id_number")
    return person


def list_persons(
    session: Session,
    *,
    after: str | None,
    limit: int,
    unit_org_id: int | None = None,
    scope: ColumnElement[bool] | None = None,
) -> Page[Person]:
    """Persons by cursor, within ``scope`` (``access.scoping.visible``) if given."""
    q = select(Person) if scope is None else select(Person).where(scope)
    if unit_org_id is not None:
        q = q.where(Person.unit_org_id == unit_org_id)
    return page_by_id(session, q, Person.id, after=after, limit=limit)


def add_person_record(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    person_id: int,
    kind: str,
    title: str,
    started_on: date | None = None,
    ended_on: date | None = None,
    detail: dict[str, Any] | None = None,
) -> PersonRecord:
    """ID-3: add a qualification, work history entry, work injury or occupational disease."""
    require(actor, "register.write")
    record_kind: RecordKind = _enum(RecordKind, kind, "kind")
    if started_on and ended_on and ended_on < started_on:
        raise InvalidInput("ended_on is before started_on", field="ended_on")
    s = uow.session
    require_scope(actor, "register.write", record_of_person(s, get_person(s, person_id)))
    now = rt.now()
    row = PersonRecord(
        person_id=person_id,
        kind=record_kind.value,
        title=clean_name(title, "title"),
        started_on=started_on,
        ended_on=ended_on,
        detail=detail or {},
        created_at=now,
    )
    s.add(row)
    s.flush()
    record(
        s,
        actor=actor,
        at=now,
        action="person.record_added",
        subject_type="person",
        subject_id=person_id,
        person_id=person_id,
        detail={"kind": record_kind.value},
    )
    uow.commit()
    return row


# ---------------------------------------------------------------- staff


def create_staff(
    session: Session,
    *,
    actor: Actor,
    org: Organization,
    name: str,
    role: str = "operator",
    now: Any,
) -> tuple[Staff, str]:
    """Add a staff member and return their bearer token (shown once, stored hashed)."""
    token = f"ssc_{secrets.token_urlsafe(24)}"
    staff = Staff(
        org_id=org.id,
        name=clean_name(name),
        role=role,
        token_hash=hash_token(token),
        created_at=now,
    )
    session.add(staff)
    session.flush()
    record(
        session,
        actor=actor,
        at=now,
        action="staff.created",
        subject_type="staff",
        subject_id=staff.id,
        detail={"org_id": org.id, "role": role},
    )
    return staff, token
