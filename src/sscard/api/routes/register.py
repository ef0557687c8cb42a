"""Register endpoints: organizations, units, persons, person records."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select

from sscard.access.model import Permissions, require, require_scope
from sscard.access.scoping import record_of_person, record_of_unit, visible
from sscard.api.schemas import (
    AgreementIn,
    AuthorisationIn,
    MeRead,
    OrganizationIn,
    OrganizationPage,
    OrganizationRead,
    PersonIn,
    PersonPage,
    PersonRead,
    PersonRecordIn,
    PersonRecordRead,
    PersonSearchIn,
    UnitIn,
    UnitRead,
)
from sscard.api.unit import UnitRoute, Uow
from sscard.core.ids import mask_id_number
from sscard.db.paging import page_by_id
from sscard.register import service
from sscard.register.tables import Organization, PersonRecord, Unit

router = APIRouter(route_class=UnitRoute, tags=["register"])


@router.get("/me", response_model=MeRead)
def me(request: Request, uow: Uow) -> MeRead:
    """Who this token acts as, and which operations (with their record scopes) that allows."""
    s = uow.session
    found = getattr(request.state, "authenticated", None)
    person = service.get_person(s, uow.actor.person_id) if uow.actor.person_id else None
    allowed = Permissions.of(uow.actor)
    return MeRead(
        kind=found.principal if found else "person",
        authenticated_by=found.via.value if found else "token",
        person_id=uow.actor.person_id,
        id_number=mask_id_number(person.id_number) if person else None,
        staff_id=uow.actor.staff_id,
        name=uow.actor.name,
        role=uow.actor.role if uow.actor.person_id is None else "cardholder",
        organization=uow.actor.org_code,
        organization_kind=uow.actor.org_kind.value,
        bank_code=uow.actor.bank_code,
        operations=allowed.operations,
        scopes={op: scope.value for op, scope in allowed.scopes.items()},
    )


@router.post("/organizations", response_model=OrganizationRead, status_code=status.HTTP_201_CREATED)
def create_organization(body: OrganizationIn, uow: Uow) -> Organization:
    """Register an outlet, service point, hospital, pharmacy, studio or other party."""
    return service.create_organization(
        uow,
        uow.rt,
        actor=uow.actor,
        kind=body.kind,
        code=body.code,
        name=body.name,
        parent_code=body.parent_code,
        address=body.address,
    )


@router.post("/organizations/{org_id}/authorisations", response_model=OrganizationRead)
def authorise(org_id: int, body: AuthorisationIn, uow: Uow) -> Organization:
    """P-3: extend a service (password_change, activation, inquiry) to a pharmacy or
    grassroots platform, or withdraw it."""
    return service.authorise(
        uow, uow.rt, actor=uow.actor, org_id=org_id, service=body.service, granted=body.granted
    )


@router.get("/organizations", response_model=OrganizationPage)
def list_organizations(
    uow: Uow, kind: str | None = None, after: str | None = None, limit: int = Query(default=50)
) -> OrganizationPage:
    """Organizations of the register, by cursor."""
    s = uow.session
    require(uow.actor, "organizations.read")
    q = select(Organization)
    if kind:
        q = q.where(Organization.kind == kind)
    page = page_by_id(s, q, Organization.id, after=after, limit=limit)
    return OrganizationPage(
        items=[OrganizationRead.model_validate(o) for o in page.items], next=page.next
    )


def _unit_read(org: Organization, unit: Unit) -> UnitRead:
    return UnitRead(
        id=org.id,
        code=org.code,
        name=org.name,
        uscc=unit.uscc,
        unit_kind=unit.unit_kind,
        agreement_bank_code=unit.agreement_bank_code,
        agreement_signed_at=unit.agreement_signed_at,
    )


@router.post("/units", response_model=UnitRead, status_code=status.HTTP_201_CREATED)
def create_unit(body: UnitIn, uow: Uow) -> UnitRead:
    """Register an insured unit with its Unified Social Credit Code."""
    org, unit = service.create_unit(
        uow,
        uow.rt,
        actor=uow.actor,
        code=body.code,
        name=body.name,
        uscc=body.uscc,
        unit_kind=body.unit_kind,
    )
    return _unit_read(org, unit)


@router.get("/units/{unit_id}", response_model=UnitRead)
def get_unit(unit_id: int, uow: Uow) -> UnitRead:
    """One unit and its card-issuing agreement."""
    s = uow.session
    require(uow.actor, "units.read")
    unit = service.unit_of(s, unit_id)
    require_scope(uow.actor, "units.read", record_of_unit(unit))
    return _unit_read(service.org_by_id(s, unit_id), unit)


@router.post("/units/{unit_id}/agreement", response_model=UnitRead)
def sign_agreement(unit_id: int, body: AgreementIn, uow: Uow) -> UnitRead:
    """B-2: the unit signs a card-issuing agreement with one bank."""
    unit = service.sign_agreement(
        uow, uow.rt, actor=uow.actor, unit_id=unit_id, bank_code=body.bank_code
    )
    return _unit_read(service.org_by_id(uow.session, unit_id), unit)


@router.post("/persons", response_model=PersonRead, status_code=status.HTTP_201_CREATED)
def register_person(body: PersonIn, uow: Uow) -> PersonRead:
    """Register an insured person; the ID number is checked (ID-1, ID-2)."""
    person = service.register_person(
        uow, uow.rt, actor=uow.actor, data=service.PersonInput(**body.model_dump())
    )
    return PersonRead.of(person)


@router.post("/persons/search", response_model=PersonRead)
def find_person(body: PersonSearchIn, uow: Uow) -> PersonRead:
    """Find a person by ID number (sent in the body, never in a URL that gets logged)."""
    s = uow.session
    require(uow.actor, "persons.read")
    person = service.find_person(s, body.id_number)
    require_scope(
        uow.actor,
        "persons.read",
        record_of_person(
            s, person, what="person with this ID number is registered", field="id_number"
        ),
    )
    return PersonRead.of(person)


@router.get("/persons", response_model=PersonPage)
def list_persons(
    uow: Uow, unit_id: int | None = None, after: str | None = None, limit: int = 50
) -> PersonPage:
    """Insured persons in the uow.actor's scope, by cursor."""
    s = uow.session
    page = service.list_persons(
        s,
        after=after,
        limit=limit,
        unit_org_id=unit_id,
        scope=visible(uow.actor, "persons.read", "persons"),
    )
    return PersonPage(items=[PersonRead.of(p) for p in page.items], next=page.next)


@router.get("/persons/{person_id}", response_model=PersonRead)
def get_person(person_id: int, uow: Uow) -> PersonRead:
    """One insured person (ID number and phone masked)."""
    s = uow.session
    require(uow.actor, "persons.read")
    person = service.get_person(s, person_id)
    require_scope(uow.actor, "persons.read", record_of_person(s, person))
    return PersonRead.of(person)


@router.post(
    "/persons/{person_id}/records",
    response_model=PersonRecordRead,
    status_code=status.HTTP_201_CREATED,
)
def add_record(person_id: int, body: PersonRecordIn, uow: Uow) -> PersonRecordRead:
    """ID-3: add a qualification, work history entry, injury or occupational disease."""
    row = service.add_person_record(
        uow,
        uow.rt,
        actor=uow.actor,
        person_id=person_id,
        kind=body.kind,
        title=body.title,
        started_on=body.started_on,
        ended_on=body.ended_on,
        detail=body.detail,
    )
    return PersonRecordRead.model_validate(row)


@router.get("/persons/{person_id}/records", response_model=list[PersonRecordRead])
def list_records(person_id: int, uow: Uow) -> list[PersonRecordRead]:
    """ID-3: the person's other records."""
    s = uow.session
    require(uow.actor, "person_records.read")
    person = service.get_person(s, person_id)
    require_scope(uow.actor, "person_records.read", record_of_person(s, person))
    rows = s.scalars(
        select(PersonRecord).where(PersonRecord.person_id == person_id).order_by(PersonRecord.id)
    )
    return [PersonRecordRead.model_validate(r) for r in rows]
