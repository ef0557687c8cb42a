"""Use cases of unit-bundled applications (A-2, A-4, A-5, B-2): batches and summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Date, String, and_, exists, func, insert, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, Agent, AgentDocument, check_agent, require, require_scope
from sscard.access.scoping import record_of_batch, record_of_unit
from sscard.applications.model import (
    OPEN_STATES,
    ApplicationKind,
    ApplicationState,
    BatchState,
    choose_bank,
    form_number,
)
from sscard.applications.service import FORM_FIELDS, decide, org_of, return_apps
from sscard.applications.tables import Application, Batch
from sscard.audit.service import record
from sscard.cards.model import TERMINAL
from sscard.cards.tables import Card
from sscard.core.errors import InvalidInput, NotFound, PolicyRefused
from sscard.core.ids import mask_id_number
from sscard.core.policy import AgentAct, UnitKind
from sscard.db.base import UTCDateTime, table
from sscard.db.bulk import analyze, const, json_object, load, staging
from sscard.db.counters import reserve
from sscard.db.engine import UnitOfWork
from sscard.register.model import OrgKind
from sscard.register.service import org_by_code, unit_of
from sscard.register.tables import Organization, Person
from sscard.runtime import Runtime

MAX_BATCH = 20_000


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
    require_scope(actor, "applications.issue", record_of_unit(unit))
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
    persons = list(s.scalars(_due_persons_query(org.id).with_only_columns(Person.id).limit(limit)))
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
        service_point_org_id=org_of(actor),
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
    apps = _bulk_forms(s, rt, persons, batch=batch, actor=actor)
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


def _bulk_forms(
    s: Session, rt: Runtime, person_ids: list[int], *, batch: Batch, actor: Actor
) -> list[Application]:
    """The batch's forms, one per person, set-based: the persons and their form numbers
    (one block) loaded into a staging table, the forms written by one INSERT … SELECT
    that takes the printed values from the persons' rows."""
    first = reserve(s, "application_form", len(person_ids))
    region, year = rt.policy.region.code, rt.today().year
    forms = table(Application)
    with staging(
        s,
        "stage_forms",
        Column("seq", BigInteger),
        Column("person_id", BigInteger),
        Column("form_number", String),
    ) as staged:
        load(
            s,
            staged,
            ("seq", "person_id", "form_number"),
            (
                (i, pid, form_number(region, year, first + i - 1))
                for i, pid in enumerate(person_ids, start=1)
            ),
        )
        analyze(s, staged)
        person = table(Person)
        values = {
            "form_number": staged.c.form_number,
            "person_id": staged.c.person_id,
            "batch_id": const(s, batch.id, BigInteger()),
            "kind": const(s, ApplicationKind.UNIT_BUNDLED.value, String()),
            "state": const(s, ApplicationState.ISSUED.value, String()),
            "bank_code": const(s, batch.bank_code, String()),
            "service_point_org_id": const(
                s, actor.org_id if actor.org_kind is OrgKind.SERVICE_POINT else None, BigInteger()
            ),
            "form_data": json_object(s, {name: person.c[name] for name in FORM_FIELDS}),
            "corrections": const(s, [], JSON()),
            "return_due": const(s, batch.return_due, Date()),
            "issued_at": const(s, batch.issued_at, UTCDateTime()),
            "version": const(s, 1, BigInteger()),
        }
        s.execute(
            insert(forms).from_select(
                list(values),
                select(*values.values())
                .join(person, person.c.id == staged.c.person_id)
                .order_by(staged.c.seq),
            )
        )
    return list(
        s.scalars(
            select(Application).where(Application.batch_id == batch.id).order_by(Application.id)
        )
    )


def return_batch(uow: UnitOfWork, rt: Runtime, *, actor: Actor, batch_id: int) -> Batch:
    """A-2 step 5: the unit returns its forms to the service point."""
    require(actor, "applications.return")
    s = uow.session
    batch = get_batch(s, batch_id)
    require_scope(actor, "applications.return", record_of_batch(batch))
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
    return_apps(s, apps, now)
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
    require_scope(actor, "applications.check", record_of_batch(batch))
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
    decide(s, rt, apps, actor=actor, rejections=rejections, unit_org_id=batch.unit_org_id)
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
