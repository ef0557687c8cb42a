"""Use cases: unit batches and individual applications (A-1 to A-5, C-3, B-2, B-3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sscard.access.model import Actor, Agent, AgentDocument, check_agent, require
from sscard.applications.model import (
    OPEN_STATES,
    ApplicationKind,
    ApplicationState,
    BatchState,
    PhotoSource,
    application_move,
    choose_bank,
    form_number,
)
from sscard.applications.tables import Application, Batch
from sscard.audit.service import record
from sscard.cards.model import TERMINAL, first_card_fee
from sscard.cards.service import charge_fees, order_cards
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, InvalidInput, NotFound, PolicyRefused
from sscard.core.ids import mask_id_number
from sscard.core.policy import AgentAct, UnitKind
from sscard.db.counters import reserve
from sscard.db.engine import UnitOfWork
from sscard.register.model import MedicalScheme, OrgKind, PersonStatus
from sscard.register.service import clean_phone, get_person, org_by_code, unit_of
from sscard.register.tables import Organization, Person
from sscard.runtime import Runtime

MAX_BATCH = 20_000
CORRECTABLE = {"phone", "status", "address"}


def _form_values(person: Person) -> dict[str, Any]:
    """What the service point prints on the form (A-4): basic information + ID barcode."""
    return {
        "name": person.name,
        "gender": person.gender,
        "birth_date": person.birth_date.isoformat(),
        "id_kind": person.id_kind,
        "status": person.status,
        "phone": person.phone,
    }


def _new_forms(
    session: Session,
    rt: Runtime,
    persons: list[Person],
    *,
    kind: ApplicationKind,
    bank_code: str,
    actor: Actor,
    batch_id: int | None,
    state: ApplicationState,
    outlet_org_id: int | None = None,
    replaces_card_id: int | None = None,
) -> list[Application]:
    """Create forms for ``persons`` with one block of form numbers."""
    if not persons:
        return []
    now = rt.now()
    first = reserve(session, "application_form", len(persons))
    year = rt.today().year
    return_due = None
    if state is ApplicationState.ISSUED:
        return_due = (
            rt.calendar(session)
            .add_working_days(rt.today(), rt.policy.deadlines.form_return_working_days)
            .day
        )
    apps = [
        Application(
            form_number=form_number(rt.policy.region.code, year, first + i),
            person_id=p.id,
            batch_id=batch_id,
            kind=kind.value,
            state=state.value,
            bank_code=bank_code,
            service_point_org_id=actor.org_id if actor.org_kind is OrgKind.SERVICE_POINT else None,
            outlet_org_id=outlet_org_id,
            form_data=_form_values(p),
            corrections=[],
            return_due=return_due,
            issued_at=now,
            replaces_card_id=replaces_card_id,
        )
        for i, p in enumerate(persons)
    ]
    session.add_all(apps)
    session.flush()
    return apps


def _due_persons_query(unit_org_id: int) -> Any:
    """A-1: insured persons of the unit with no open form and no live card."""
    open_app = exists().where(
        and_(Application.person_id == Person.id, Application.state.in_(OPEN_STATES))
    )
    live_card = exists().where(
        and_(Card.person_id == Person.id, Card.state.not_in([s.value for s in TERMINAL]))
    )
    return (
        select(Person)
        .where(
            Person.unit_org_id == unit_org_id,
            Person.insured_since.is_not(None),
            ~open_app,
            ~live_card,
        )
        .order_by(Person.id)
    )


@dataclass(frozen=True)
class Collector:
    """Who collects a unit's forms at the service point (A-2 step 2, A-5)."""

    name: str
    id_number: str
    agent: Agent | None = None


def issue_batch(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    unit_code: str,
    stage: str,
    collector: Collector,
    limit: int = MAX_BATCH,
) -> tuple[Batch, list[Application]]:
    """A-2 steps 1-2, A-4: hand a unit's administrator the forms of this stage."""
    require(actor, "applications.issue")
    if not 1 <= limit <= MAX_BATCH:
        raise InvalidInput(f"limit must be between 1 and {MAX_BATCH}", field="limit")
    if not stage.strip():
        raise InvalidInput("stage names the issuing stage, e.g. '2026-Q4'", field="stage")
    s = uow.session
    org = org_by_code(s, unit_code, kind=OrgKind.UNIT)
    unit = unit_of(s, org.id)
    if unit.agreement_bank_code is None:
        raise PolicyRefused(
            f"unit {unit_code} has not signed a card-issuing agreement with a bank yet (A-2 "
            "step 1): POST /units/{id}/agreement first",
            reason="no_agreement",
        )
    choose_bank(
        rt.policy, unit.agreement_bank_code, unit_kind=UnitKind(unit.unit_kind), scheme=None
    )
    if collector.agent is not None:
        if collector.agent.document is not AgentDocument.UNIT_CERTIFICATE:
            raise PolicyRefused(
                "an agent collecting a unit's forms shows a unit certificate with the unit's "
                "seal (A-5)",
                field="collector.agent.document",
                reason="missing_document",
            )
        check_agent(rt.policy, AgentAct.APPLICATION, collector.agent)
    persons = list(s.scalars(_due_persons_query(org.id).limit(limit)))
    if not persons:
        raise InvalidInput(
            f"unit {unit_code} has no insured person due a card (all have a form or a card)",
            field="unit_code",
        )
    now = rt.now()
    return_due = rt.calendar(s).add_working_days(
        rt.today(), rt.policy.deadlines.form_return_working_days
    )
    batch = Batch(
        unit_org_id=org.id,
        service_point_org_id=actor.org_id or 0,
        stage=stage.strip(),
        state=BatchState.ISSUED.value,
        bank_code=unit.agreement_bank_code,
        issued_at=now,
        return_due=return_due.day,
        collected_by={
            "name": collector.name,
            "id_number": mask_id_number(collector.id_number),
            "agent": collector.agent.record() if collector.agent else None,
        },
    )
    s.add(batch)
    s.flush()
    apps = _new_forms(
        s,
        rt,
        persons,
        kind=ApplicationKind.UNIT_BUNDLED,
        bank_code=unit.agreement_bank_code,
        actor=actor,
        batch_id=batch.id,
        state=ApplicationState.ISSUED,
    )
    record(
        s,
        actor=actor,
        at=now,
        action="batch.issued",
        subject_type="batch",
        subject_id=batch.id,
        channel="service_point",
        detail={"unit_org_id": org.id, "forms": len(apps), "stage": batch.stage},
    )
    uow.commit()
    return batch, apps


def issue_individual(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    person_id: int,
    bank_code: str,
    agent: Agent | None = None,
) -> Application:
    """A-3, B-3: a flexible employee chooses a bank at the service point and gets a form."""
    require(actor, "applications.issue")
    check_agent(rt.policy, AgentAct.BANK_CHOICE, agent)
    if agent is not None and agent.document is not AgentDocument.PRINCIPAL_ID:
        raise PolicyRefused(
            "an individual's agent shows the principal's ID card (A-5)",
            field="agent.document",
            reason="missing_document",
        )
    s = uow.session
    person = get_person(s, person_id)
    if person.unit_org_id is not None:
        raise InvalidInput(
            "this person is insured through a unit: the unit applies in a bundle (A-2)",
            field="person_id",
        )
    if person.insured_since is None:
        raise PolicyRefused(
            "no social insurance paid yet: no card is due (A-1)", reason="not_insured"
        )
    _refuse_if_open_or_live(s, person.id)
    choose_bank(rt.policy, bank_code, unit_kind=None, scheme=MedicalScheme(person.medical_scheme))
    apps = _new_forms(
        s,
        rt,
        [person],
        kind=ApplicationKind.INDIVIDUAL,
        bank_code=bank_code,
        actor=actor,
        batch_id=None,
        state=ApplicationState.ISSUED,
    )
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="application.issued",
        subject_type="application",
        subject_id=apps[0].id,
        person_id=person.id,
        channel="service_point",
        detail={"bank_code": bank_code, "agent": agent.record() if agent else None},
    )
    uow.commit()
    return apps[0]


def _refuse_if_open_or_live(s: Session, person_id: int) -> None:
    open_form = s.scalar(
        select(Application.form_number).where(
            Application.person_id == person_id, Application.state.in_(OPEN_STATES)
        )
    )
    if open_form is not None:
        raise InvalidInput(
            f"this person already has an open form ({open_form}) (A-4)", field="person_id"
        )
    live = s.scalar(
        select(Card.id).where(
            Card.person_id == person_id, Card.state.not_in([t.value for t in TERMINAL])
        )
    )
    if live is not None:
        raise InvalidInput(
            f"this person already has card {live}: use replacement or change instead",
            field="person_id",
        )


def get_application(s: Session, application_id: int) -> Application:
    app = s.get(Application, application_id)
    if app is None:
        raise NotFound(f"no application with id {application_id}")
    return app


def get_application_by_form(s: Session, number: str) -> Application:
    app = s.scalar(select(Application).where(Application.form_number == number.strip()))
    if app is None:
        raise NotFound(f"no application form {number}", field="form_number")
    return app


def _check_unit_scope(s: Session, actor: Actor, app: Application) -> None:
    if actor.org_kind is OrgKind.UNIT:
        person = get_person(s, app.person_id)
        if person.unit_org_id != actor.org_id:
            raise Forbidden("this form belongs to another unit's insured person")


def correct_form(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    application_id: int,
    changes: dict[str, str] | None = None,
    photo_source: str | None = None,
    photo_receipt_no: str | None = None,
    studio_code: str | None = None,
) -> Application:
    """A-2 step 4, C-3: the insured checks and corrects the form and settles the photo."""
    require(actor, "applications.correct")
    s = uow.session
    app = get_application(s, application_id)
    _check_unit_scope(s, actor, app)
    application_move(ApplicationState(app.state), "correct")
    changes = dict(changes or {})
    for key in ("name", "id_number"):
        if key in changes:
            raise InvalidInput(
                f"a change of {key.replace('_', ' ')} is made at the social insurance agency "
                "as a change request (ID-4), not on the form",
                field=f"changes.{key}",
            )
    unknown = set(changes) - CORRECTABLE
    if unknown:
        raise InvalidInput(
            f"cannot correct {', '.join(sorted(unknown))}; correctable: "
            + ", ".join(sorted(CORRECTABLE)),
            field="changes",
        )
    if "phone" in changes:
        changes["phone"] = clean_phone(changes["phone"]) or ""
    if "status" in changes:
        try:
            PersonStatus(changes["status"])
        except ValueError:
            raise InvalidInput(
                "status must be employed, unemployed or retired", field="changes.status"
            ) from None
    now = rt.now()
    data = dict(app.form_data)
    log = list(app.corrections)
    for key, value in sorted(changes.items()):
        log.append({"field": key, "old": data.get(key), "new": value, "at": now.isoformat()})
        data[key] = value
    if photo_source is not None:
        try:
            source = PhotoSource(photo_source)
        except ValueError:
            raise InvalidInput(
                "photo_source must be 'id_card_authorisation' or 'studio_receipt'",
                field="photo_source",
            ) from None
        if source is PhotoSource.STUDIO_RECEIPT:
            if not (photo_receipt_no or "").strip() or not studio_code:
                raise InvalidInput(
                    "a studio photo needs the photo receipt number and the studio's code (C-3)",
                    field="photo_receipt_no",
                )
            studio = org_by_code(s, studio_code, kind=OrgKind.PHOTO_STUDIO)
            app.photo_studio_org_id = studio.id
            app.photo_receipt_no = (photo_receipt_no or "").strip()
        else:
            app.photo_studio_org_id = None
            app.photo_receipt_no = None
        app.photo_source = source.value
        log.append({"field": "photo_source", "new": source.value, "at": now.isoformat()})
    app.form_data = data
    app.corrections = log
    person = get_person(s, app.person_id)
    if "phone" in changes:
        person.phone = changes["phone"] or None
    if "status" in changes:
        person.status = changes["status"]
    person.updated_at = now
    record(
        s,
        actor=actor,
        at=now,
        action="application.corrected",
        subject_type="application",
        subject_id=app.id,
        person_id=app.person_id,
        detail={"fields": sorted(changes), "photo_source": app.photo_source},
    )
    uow.commit()
    return app


def _return_apps(s: Session, apps: list[Application], now: datetime) -> None:
    for app in apps:
        app.state = application_move(ApplicationState(app.state), "return").value
        app.returned_at = now


def return_batch(uow: UnitOfWork, rt: Runtime, *, actor: Actor, batch_id: int) -> Batch:
    """A-2 step 5: the unit returns its forms to the service point."""
    require(actor, "applications.return")
    s = uow.session
    batch = get_batch(s, batch_id)
    if batch.state != BatchState.ISSUED:
        raise InvalidInput(
            f"batch {batch_id} is '{batch.state}', forms were already returned", field="batch_id"
        )
    now = rt.now()
    apps = list(
        s.scalars(
            select(Application).where(
                Application.batch_id == batch.id, Application.state == ApplicationState.ISSUED
            )
        )
    )
    _return_apps(s, apps, now)
    batch.state = BatchState.RETURNED.value
    batch.returned_at = now
    late = rt.today() > batch.return_due
    record(
        s,
        actor=actor,
        at=now,
        action="batch.returned",
        subject_type="batch",
        subject_id=batch.id,
        channel="service_point",
        detail={"forms": len(apps), "late": late},
    )
    uow.commit()
    return batch


def return_form(uow: UnitOfWork, rt: Runtime, *, actor: Actor, application_id: int) -> Application:
    """A-3 step 4: an individual returns their form."""
    require(actor, "applications.return")
    s = uow.session
    app = get_application(s, application_id)
    if app.batch_id is not None:
        raise InvalidInput(
            "this form belongs to a unit batch: return the batch", field="application_id"
        )
    _return_apps(s, [app], rt.now())
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="application.returned",
        subject_type="application",
        subject_id=app.id,
        person_id=app.person_id,
    )
    uow.commit()
    return app


def _decide(
    s: Session,
    rt: Runtime,
    apps: list[Application],
    *,
    actor: Actor,
    rejections: dict[int, str],
    unit_org_id: int | None,
) -> list[Card]:
    """Accept or reject returned forms; order the accepted ones' cards, set-based."""
    now = rt.now()
    accepted: list[Application] = []
    rows: list[dict[str, Any]] = []
    for app in apps:
        reason = rejections.get(app.id)
        if reason is None and app.photo_source is None:
            reason = "no photo: authorise the ID card photo or bring a studio receipt (C-3)"
        target = application_move(
            ApplicationState(app.state), "accept" if reason is None else "reject"
        )
        rows.append(
            {
                "b_id": app.id,
                "b_state": target.value,
                "b_reason": None if reason is None else reason[:300],
            }
        )
        if reason is None:
            accepted.append(app)
    # One executemany for every decision, instead of one versioned UPDATE per form.
    table = cast(Table, Application.__table__)
    s.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            state=bindparam("b_state"),
            reject_reason=bindparam("b_reason"),
            decided_at=now,
            version=table.c.version + 1,
        ),
        rows,
    )
    for app, row in zip(apps, rows, strict=True):
        set_committed_value(app, "state", row["b_state"])
        set_committed_value(app, "reject_reason", row["b_reason"])
        set_committed_value(app, "decided_at", now)
        set_committed_value(app, "version", app.version + 1)
    by_kind: dict[str, list[Application]] = {}
    for app in accepted:
        by_kind.setdefault(app.kind, []).append(app)
    cards: list[Card] = []
    for kind, group in by_kind.items():
        ordered = order_cards(
            s, rt, group, actor=actor, unit_org_id=unit_org_id, reason_code=f"application:{kind}"
        )
        # F-1: the first card is free; the zero fee is recorded as the basis for it.
        charge_fees(
            s,
            rt,
            [(card, app.id) for card, app in zip(ordered, group, strict=True)],
            first_card_fee(rt.policy),
            actor=actor,
        )
        cards += ordered
    return cards


@dataclass(frozen=True)
class Summary:
    """A-2 step 6: the registration summary (申领登记汇总表) given to the unit."""

    batch: Batch
    unit: Organization
    accepted: list[tuple[Application, Person]]
    rejected: list[tuple[Application, Person]]
    ready_on: str | None


def check_batch(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    batch_id: int,
    rejections: dict[int, str] | None = None,
) -> Summary:
    """A-2 step 6: check the returned forms, order the cards, give the unit a summary."""
    require(actor, "applications.check")
    rejections = rejections or {}
    s = uow.session
    batch = get_batch(s, batch_id)
    if batch.state != BatchState.RETURNED:
        raise InvalidInput(
            f"batch {batch_id} is '{batch.state}': only returned forms can be checked",
            field="batch_id",
        )
    apps = list(
        s.scalars(
            select(Application)
            .where(Application.batch_id == batch.id, Application.state == ApplicationState.RETURNED)
            .order_by(Application.id)
        )
    )
    unknown = set(rejections) - {a.id for a in apps}
    if unknown:
        raise InvalidInput(
            f"application {min(unknown)} is not a returned form of this batch", field="rejections"
        )
    _decide(s, rt, apps, actor=actor, rejections=rejections, unit_org_id=batch.unit_org_id)
    batch.state = BatchState.CHECKED.value
    batch.checked_at = rt.now()
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="batch.checked",
        subject_type="batch",
        subject_id=batch.id,
        channel="service_point",
        detail={
            "accepted": sum(a.state == ApplicationState.ACCEPTED for a in apps),
            "rejected": sum(a.state == ApplicationState.REJECTED for a in apps),
        },
    )
    uow.commit()
    return batch_summary(s, batch.id)


def check_individual(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    application_id: int,
    reject_reason: str | None = None,
) -> tuple[Application, Card | None]:
    """A-3 step 5: the service point checks an individual's form; both sign."""
    require(actor, "applications.check")
    s = uow.session
    app = get_application(s, application_id)
    if app.batch_id is not None:
        raise InvalidInput(
            "this form belongs to a unit batch: check the batch", field="application_id"
        )
    ordered = _decide(
        s,
        rt,
        [app],
        actor=actor,
        rejections={app.id: reject_reason} if reject_reason else {},
        unit_org_id=None,
    )
    card = ordered[0] if ordered else None
    record(
        s,
        actor=actor,
        at=rt.now(),
        action=f"application.{app.state}",
        subject_type="application",
        subject_id=app.id,
        person_id=app.person_id,
        detail={"reason": app.reject_reason},
    )
    uow.commit()
    return app, card


def get_batch(s: Session, batch_id: int) -> Batch:
    batch = s.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    return batch


def batch_summary(s: Session, batch_id: int) -> Summary:
    batch = get_batch(s, batch_id)
    unit = s.get(Organization, batch.unit_org_id)
    assert unit is not None
    rows = list(
        s.execute(
            select(Application, Person)
            .join(Person, Person.id == Application.person_id)
            .where(Application.batch_id == batch.id)
            .order_by(Application.id)
        )
    )
    ready = s.scalar(
        select(func.max(Card.ready_on))
        .join(Application, Application.id == Card.application_id)
        .where(Application.batch_id == batch.id)
    )
    return Summary(
        batch=batch,
        unit=unit,
        accepted=[(a, p) for a, p in rows if a.state == ApplicationState.ACCEPTED],
        rejected=[(a, p) for a, p in rows if a.state == ApplicationState.REJECTED],
        ready_on=ready.isoformat() if ready else None,
    )


def new_accepted_application(
    s: Session,
    rt: Runtime,
    person: Person,
    *,
    kind: ApplicationKind,
    bank_code: str,
    actor: Actor,
    replaces_card_id: int,
    photo: dict[str, Any] | None = None,
) -> Application:
    """The form behind a replacement or change done at an outlet (R-1, R-4)."""
    app = _new_forms(
        s,
        rt,
        [person],
        kind=kind,
        bank_code=bank_code,
        actor=actor,
        batch_id=None,
        state=ApplicationState.ACCEPTED,
        outlet_org_id=actor.org_id,
        replaces_card_id=replaces_card_id,
    )[0]
    app.decided_at = rt.now()
    app.returned_at = rt.now()
    previous = s.scalar(
        select(Application)
        .join(Card, Card.application_id == Application.id)
        .where(Card.id == replaces_card_id)
    )
    photo = photo or {}
    app.photo_source = photo.get("source") or (previous.photo_source if previous else None)
    app.photo_receipt_no = photo.get("receipt_no") or (
        previous.photo_receipt_no if previous else None
    )
    app.photo_studio_org_id = photo.get("studio_org_id") or (
        previous.photo_studio_org_id if previous else None
    )
    return app
