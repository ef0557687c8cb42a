"""Benchmark data, written in bulk: CSV files for the importer and cards straight in SQL.

The per-card services (apply, check, produce, pick up, ...) take several transactions
per card; the benchmarks need thousands of cards in a given state in a second or two.
So persons go in as multi-row ``INSERT ... VALUES`` (their ID numbers are computed in
Python, with a valid GB 11643 check character, sealed and blind-indexed on the way in),
applications as one ``INSERT ... SELECT`` over those persons, and cards as one
executemany ``INSERT`` (their bank card numbers are sealed too). Every statement is portable between
PostgreSQL and SQLite (bound values carry the project's column types).
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
    cast,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.access.tables import Staff
from sscard.applications.model import ApplicationKind, ApplicationState
from sscard.applications.tables import Application
from sscard.cards.model import CardState, valid_until
from sscard.cards.tables import Card
from sscard.core.ids import make_citizen_id
from sscard.core.policy import Channel
from sscard.db.base import UTCDateTime
from sscard.register.model import OrgKind
from sscard.register.tables import Organization, Person
from sscard.runtime import Runtime

REGION = "441900"  # Dongguan, the default policy's region
BANK = "ICBC"
PER_BIRTH_DAY = 999  # order codes 001-999 for each birth date
MAX_ROWS = 2_000_000  # bound on any generated data set
PERSON_HEADER = (
    "id_number",
    "name",
    "status",
    "phone",
    "unit_code",
    "medical_scheme",
    "insured_since",
    "old_medical_card_no",
)


class Cohort(StrEnum):
    """Disjoint ranges of birth dates, so no two data sets share an ID number."""

    IMPORT = "import"
    SWEEP = "sweep"
    ACTIVATION = "activation"


BIRTH_BASE = {
    Cohort.IMPORT: date(1985, 1, 1),
    Cohort.SWEEP: date(1960, 1, 1),
    Cohort.ACTIVATION: date(1975, 1, 1),
}


def id_numbers(cohort: Cohort, n: int) -> list[str]:
    """``n`` distinct, valid citizen ID numbers of one cohort."""
    if not 0 < n <= MAX_ROWS:
        raise ValueError(f"between 1 and {MAX_ROWS} rows, not {n}")
    base = BIRTH_BASE[cohort]
    return [
        make_citizen_id(REGION, base + timedelta(days=i // PER_BIRTH_DAY), i % PER_BIRTH_DAY + 1)
        for i in range(n)
    ]


def write_person_csv(path: Path, n: int) -> None:
    """A valid import file of ``n`` employed persons without a unit."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PERSON_HEADER)
        for i, number in enumerate(id_numbers(Cohort.IMPORT, n)):
            writer.writerow(
                (number, f"参保人{i}", "employed", f"138{i:08d}", "", "employee", "2020-01-01", "")
            )


@dataclass(frozen=True)
class Outlet:
    """The outlet the cards wait at, and the staff member who activates them."""

    org_id: int
    actor: Actor


def make_outlet(rt: Runtime, code: str = "BENCH-OUTLET") -> Outlet:
    """An ICBC outlet with one operator (the bank organization comes from the policy)."""
    now = rt.now()
    with rt.uow() as uow:
        s = uow.session
        bank_id = s.scalar(select(Organization.id).where(Organization.code == BANK))
        assert bank_id is not None, f"bank {BANK} is not in the region policy"
        org = Organization(
            kind=OrgKind.OUTLET.value,
            code=code,
            name=f"benchmark outlet {code}",
            parent_id=bank_id,
            bank_code=BANK,
            created_at=now,
        )
        s.add(org)
        s.flush()
        staff = Staff(
            org_id=org.id,
            name="benchmark operator",
            role="operator",
            token_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
            active=True,
            created_at=now,
        )
        s.add(staff)
        uow.commit()
        actor = Actor(
            staff_id=staff.id,
            org_id=org.id,
            org_kind=OrgKind.OUTLET,
            org_code=code,
            bank_code=BANK,
            name=staff.name,
        )
        return Outlet(org_id=org.id, actor=actor)


def _at(value: datetime) -> Any:
    return literal(value, UTCDateTime())


def _text(value: str | None) -> Any:
    return literal(value, String())


def _card_values(state: CardState, now: datetime, rt: Runtime) -> dict[str, datetime | date | str]:
    """Column values of a card that reached ``state`` through the usual life."""
    received = now - timedelta(days=30)
    produced = now - timedelta(days=40)
    common: dict[str, datetime | date | str] = {
        "ordered_at": now - timedelta(days=90),
        "ready_on": (produced + timedelta(days=1)).date(),
        "produced_at": produced,
        "valid_until": valid_until(produced.date(), rt.policy),
        "picked_up_at": received,
        "received_at": received,
    }
    if state is CardState.RECEIVED:
        # Received yesterday: no deadline (V-4, V-5) is near.
        return common | {
            "picked_up_at": now - timedelta(days=1),
            "received_at": now - timedelta(days=1),
        }
    if state is CardState.LOST_ORAL:
        # Active, reported lost by phone 6 days ago: the report lapsed a day ago (L-1).
        reported = now - timedelta(days=6)
        return common | {
            "state_before_loss": CardState.ACTIVE.value,
            "activated_at": received + timedelta(hours=1),
            "activation_channel": Channel.OUTLET.value,
            "financial_activated_at": received + timedelta(hours=1),
            "loss_reported_at": reported,
            "oral_loss_lapses_at": now - timedelta(days=1),
        }
    raise ValueError(f"no bulk recipe for cards in state {state}")


def bulk_cards(
    rt: Runtime, *, outlet: Outlet, cohort: Cohort, n: int, state: CardState
) -> list[int]:
    """``n`` persons with one card each in ``state``, in one transaction; the card ids."""
    now = rt.now()
    tag = f"BENCH-{cohort.value[:3].upper()}-"
    with rt.uow() as uow:
        s = uow.session
        _persons(s, cohort, n, now, tag)
        _applications(s, outlet, now, tag)
        _cards(s, rt, outlet, now, tag, state)
        ids = list(
            s.scalars(
                select(Card.id)
                .join(Application, Application.id == Card.application_id)
                .where(Application.form_number.like(tag + "%"))
                .order_by(Card.id)
            )
        )
        uow.commit()
    if len(ids) != n:
        raise RuntimeError(f"wanted {n} {state} cards, the bulk insert made {len(ids)}")
    return ids


def _persons(s: Session, cohort: Cohort, n: int, now: datetime, tag: str) -> None:
    rows = [
        {
            "id_number": number,
            "id_kind": "citizen",
            "name": tag + str(i),
            "gender": "male" if int(number[16]) % 2 else "female",
            "birth_date": date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
            "status": "employed",
            "phone": "13800138000",
            "unit_org_id": None,
            "medical_scheme": "employee",
            "insured_since": date(2020, 1, 1),
            "old_medical_card_no": None,
            "old_medical_card_state": "none",
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for i, number in enumerate(id_numbers(cohort, n))
    ]
    # A list of parameter sets: SQLAlchemy sends multi-row INSERT ... VALUES batches.
    s.execute(insert(Person), rows)


def _applications(s: Session, outlet: Outlet, now: datetime, tag: str) -> None:
    issued = now - timedelta(days=95)
    columns = (
        "form_number",
        "person_id",
        "kind",
        "state",
        "bank_code",
        "outlet_org_id",
        "photo_source",
        "form_data",
        "corrections",
        "issued_at",
        "returned_at",
        "decided_at",
        "version",
    )
    source = select(
        _text(tag) + cast(Person.id, String),
        Person.id,
        _text(ApplicationKind.INDIVIDUAL.value),
        _text(ApplicationState.ACCEPTED.value),
        _text(BANK),
        literal(outlet.org_id, BigInteger()),
        _text("id_card_authorisation"),
        literal({}, JSON()),
        literal([], JSON()),
        _at(issued),
        _at(issued + timedelta(days=2)),
        _at(issued + timedelta(days=3)),
        literal(1, Integer()),
    ).where(Person.name.like(tag + "%"))
    s.execute(insert(Application).from_select(columns, source))


def _cards(
    s: Session, rt: Runtime, outlet: Outlet, now: datetime, tag: str, state: CardState
) -> None:
    # Built in Python, not INSERT ... SELECT: the bank card number is sealed and its
    # blind index keyed, per value, on the way in (one executemany INSERT).
    extra = _card_values(state, now, rt)
    forms = s.execute(
        select(Application.id, Application.person_id).where(Application.form_number.like(tag + "%"))
    ).all()
    rows = [
        {
            "person_id": person_id,
            "application_id": app_id,
            "bank_code": BANK,
            "state": state.value,
            "outlet_org_id": outlet.org_id,
            "card_number": f"BC{app_id}",
            "serial": f"SN{app_id}",
            # 6-digit ICBC BIN + 13 digits: unique, 19 digits (not Luhn-checked).
            "bank_card_number": f"622202{app_id + 10**12}",
            "ready_provisional": False,
            "version": 1,
            **extra,
        }
        for app_id, person_id in forms
    ]
    s.execute(insert(Card), rows)
