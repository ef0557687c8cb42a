"""Use cases: unit batches and individual applications (A-1 to A-5, C-3, B-2, B-3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sscard.access.model import Actor, Agent, AgentDocument, check_agent, require, require_scope
from sscard.access.scoping import record_of_application, record_of_person
from sscard.applications.model import (
    OPEN_STATES,
    ApplicationKind,
    ApplicationState,
    PhotoSource,
    application_move,
    choose_bank,
    form_number,
)
from sscard.applications.tables import Application
from sscard.audit.service import record
from sscard.cards.model import TERMINAL, first_card_fee
from sscard.cards.service import charge_fees, order_cards
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, InvalidInput, NotFound, PolicyRefused
from sscard.core.policy import AgentAct
from sscard.db.counters import reserve
from sscard.db.engine import UnitOfWork
from sscard.register.model import MedicalScheme, OrgKind, PersonStatus
from sscard.register.service import clean_phone, get_person, org_by_code
from sscard.register.tables import Person
from sscard.runtime import Runtime

CORRECTABLE = {"phone", "status", "address"}


def org_of(actor: Actor) -> int:
    if actor.org_id is None:
        raise Forbidden("this act is done by staff of a service point")
    return actor.org_id


# What the service point prints on the form: basic information + ID barcode.
FORM_FIELDS = ("name", "gender", "birth_date", "id_kind", "status", "phone")


def _form_values(person: Person) -> dict[str, Any]:
    """A person's ``FORM_FIELDS`` (the birth date as YYYY-MM-DD)."""
    values = {name: getattr(person, name) for name in FORM_FIELDS}
    values["birth_date"] = person.birth_date.isoformat()
    return values


def new_forms(
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
    require_scope(actor, "applications.issue", record_of_person(s, person))
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
    apps = new_forms(
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
    require_scope(actor, "applications.correct", record_of_application(s, app))
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


def return_apps(s: Session, apps: list[Application], now: datetime) -> None:
    for app in apps:
        app.state = application_move(ApplicationState(app.state), "return").value
        app.returned_at = now


def return_form(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    application_id: int,
    agent: Agent | None = None,
) -> Application:
    """A-3 step 4: an individual returns their form (or their agent, with the principal's ID)."""
    require(actor, "applications.return")
    check_agent(rt.policy, AgentAct.APPLICATION, agent)
    if agent is not None and agent.document is not AgentDocument.PRINCIPAL_ID:
        raise PolicyRefused(
            "an individual's agent shows the principal's ID card (A-5)",
            field="agent.document",
            reason="missing_document",
        )
    s = uow.session
    app = get_application(s, application_id)
    require_scope(actor, "applications.return", record_of_application(s, app))
    if app.batch_id is not None:
        raise InvalidInput(
            "this form belongs to a unit batch: return the batch", field="application_id"
        )
    return_apps(s, [app], rt.now())
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="application.returned",
        subject_type="application",
        subject_id=app.id,
        person_id=app.person_id,
        detail={"agent": agent.record()} if agent else None,
    )
    uow.commit()
    return app


def decide(
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
    require_scope(actor, "applications.check", record_of_application(s, app))
    if app.batch_id is not None:
        raise InvalidInput(
            "this form belongs to a unit batch: check the batch", field="application_id"
        )
    ordered = decide(
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
    app = new_forms(
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
