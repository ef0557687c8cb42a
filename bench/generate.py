"""``python -m bench.generate``: a realistic region, loaded with PostgreSQL ``COPY``.

Cardholders with valid GB 11643 ID numbers (real Guangdong county codes, birth dates
from 1950 to 2005), Chinese names (Faker ``zh_CN``), employees of units and flexible
employees and retirees, one card each in every state of the card's life (a few with an
older replaced, superseded or destroyed card beside the new one), a medical personal
account with a contribution posted to it (transaction, two entries, the contribution
row) and, for usable cards, a consumption password. The stored values are the
project's own: ID numbers and bank card numbers sealed and blind-indexed through the
same column types the ORM binds with (``EncryptedString``, ``blind``), passwords
through ``sscard.accounts.passwords.verifier``.

Rows are built in worker processes, chunk by chunk, and each chunk is sent with one
``COPY`` per table on one connection. No deadline is due at the time of generation
(oral reports lapse in the future, cards waited at the outlet less than 180 days, ...),
so a sweep finds nothing until a benchmark makes work for it. Audit records are not
generated (the audit chain is written and sealed by the services themselves).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from typing import Any

import psycopg
from faker import Faker
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import Dialect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from sscard.accounts.model import AccountKind, TxnKind
from sscard.accounts.passwords import verifier
from sscard.accounts.tables import LedgerAccount
from sscard.bootstrap import prepare
from sscard.cards.model import Action, CardState
from sscard.cards.tables import Card
from sscard.core.ids import make_citizen_id
from sscard.core.policy import Channel
from sscard.core.protect import BANK_CARD_NUMBER, ID_NUMBER, SOCIAL
from sscard.db.types import EncryptedString, blind
from sscard.register.model import OrgKind
from sscard.register.tables import Organization, Person, Unit
from sscard.runtime import Runtime

DEFAULT_CARDHOLDERS = 1_000_000
MAX_CARDHOLDERS = 10_000_000
BENCH_PIN = "482913"  # every generated consumption password: benchmark data only
CHUNK = 5_000
PER_UNIT = 60  # employees per unit, on average
PER_OUTLET = 20_000  # cardholders per bank outlet
OPENING_BALANCE = (20_000, 90_000)  # fen credited by the generated contribution
BINS = {  # six-digit bank identification numbers of the bank card numbers
    "ICBC": "622202",
    "CCB": "621700",
    "BOC": "621661",
    "ABC": "622848",
    "CGB": "622568",
    "DGB": "622333",
}
# The main card's state, by share (per mille) of the cardholders.
STATES: tuple[tuple[CardState, int], ...] = (
    (CardState.ACTIVE, 820),
    (CardState.RECEIVED, 50),
    (CardState.ORDERED, 25),
    (CardState.AT_OUTLET, 25),
    (CardState.WITH_UNIT, 15),
    (CardState.LOST_ORAL, 10),
    (CardState.LOST_WRITTEN, 20),
    (CardState.LOST_AUTO, 15),
    (CardState.DESTROYED, 20),
)
# Every so many cardholders hold an active card that replaced an older one.
OLD_CARD_EVERY = 25
OLD_STATES = (CardState.REPLACED, CardState.SUPERSEDED, CardState.DESTROYED)
USABLE = frozenset({CardState.ACTIVE})
DIALECT: Dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def region_codes(prefix: str = "44") -> tuple[str, ...]:
    """Real county codes of a province (default Guangdong) from python-stdnum's register."""
    from stdnum import numdb

    db = numdb.get("cn/loc")
    found = []
    for n in range(int(prefix) * 10_000 + 101, (int(prefix) + 1) * 10_000):
        code = f"{n:06d}"
        info = {k: v for _, props in db.info(code) for k, v in props.items()}
        if "county" in info and "[" in info["county"] and "-]" in info["county"]:
            found.append(code)  # still in use ("[1988-]"), not a retired code
    return tuple(found)


def citizen_id(i: int, regions: Sequence[str]) -> str:
    """The ``i``-th of a set of distinct valid ID numbers (a bijection, scrambled)."""
    days = (date(2005, 12, 31) - date(1950, 1, 1)).days
    total = len(regions) * days * 999
    if i >= total:
        raise ValueError(f"at most {total} distinct ID numbers")
    j = (i * 2_654_435_761) % total if _coprime(2_654_435_761, total) else i
    order, j = j % 999 + 1, j // 999
    day, region = j % days, j // days
    return make_citizen_id(regions[region], date(1950, 1, 1) + timedelta(days=day), order)


def _coprime(a: int, b: int) -> bool:
    import math

    return math.gcd(a, b) == 1


# ----------------------------------------------------------------- COPY text values


def _v(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _line(values: Sequence[object]) -> str:
    return "\t".join(_v(v) for v in values) + "\n"


@functools.cache
def _sealer(table: str, column: str) -> EncryptedString:
    """The column's own type: what the ORM would store for a value."""
    model = {"persons": Person, "cards": Card}[table]
    kind = model.__table__.c[column].type
    assert isinstance(kind, EncryptedString)
    return kind


def sealed(table: str, column: str, value: str) -> str:
    """``value`` as the ORM stores it in ``table.column`` (AES-GCM, the column's context)."""
    stored = _sealer(table, column).process_bind_param(value, DIALECT)
    assert stored is not None
    return stored


COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": (
        "id",
        "id_number",
        "id_number_hash",
        "id_kind",
        "name",
        "gender",
        "birth_date",
        "status",
        "phone",
        "unit_org_id",
        "medical_scheme",
        "insured_since",
        "old_medical_card_no",
        "old_medical_card_state",
        "created_at",
        "updated_at",
        "version",
    ),
    "applications": (
        "id",
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
    ),
    "cards": (
        "id",
        "person_id",
        "application_id",
        "bank_code",
        "state",
        "state_before_loss",
        "card_number",
        "serial",
        "bank_card_number",
        "bank_card_number_hash",
        "outlet_org_id",
        "unit_org_id",
        "ordered_at",
        "ready_on",
        "ready_provisional",
        "produced_at",
        "valid_until",
        "at_outlet_since",
        "picked_up_at",
        "handout_due",
        "received_at",
        "activated_at",
        "activation_channel",
        "financial_activated_at",
        "loss_reported_at",
        "oral_loss_lapses_at",
        "written_report_no",
        "replaced_by_card_id",
        "version",
    ),
    "card_transitions": (
        "id",
        "card_id",
        "person_id",
        "from_state",
        "to_state",
        "action",
        "channel",
        "place_org_id",
        "occurred_at",
        "detail",
    ),
    "ledger_accounts": ("id", "kind", "person_id", "org_id", "shard", "balance_fen", "created_at"),
    "ledger_txns": ("id", "kind", "person_id", "org_id", "amount_fen", "created_at", "detail"),
    "ledger_entries": ("id", "txn_id", "account_id", "amount_fen", "created_at"),
    "contributions": (
        "id",
        "person_id",
        "unit_org_id",
        "month",
        "amount_fen",
        "txn_id",
        "created_at",
    ),
    "medical_passwords": ("person_id", "password_hash", "failed_attempts", "set_at", "version"),
}
ORDER = tuple(COLUMNS)  # foreign keys: every table after the ones it points at
ID_TABLES = tuple(t for t in ORDER if "id" in COLUMNS[t])


@dataclass(frozen=True)
class Plan:
    """What every chunk needs: the first id of each table and the organizations."""

    now: datetime
    seed: int
    bases: dict[str, int]  # table -> first id used (ids are base + a fixed offset)
    units: tuple[tuple[int, str], ...]  # (org id, bank code)
    outlets: dict[str, tuple[int, ...]]  # bank code -> outlet org ids
    pools: dict[int, int]  # org id (unit or center) -> fund pool account id
    center_id: int
    regions: tuple[str, ...]
    pin_verifiers: bool = True


@dataclass
class Chunk:
    copies: dict[str, str]
    states: Counter[str] = field(default_factory=Counter)
    pool_debits: Counter[int] = field(default_factory=Counter)


def _card_dates(
    state: CardState, now: datetime, rng: random.Random, *, old: bool = False
) -> dict[str, datetime | date | str | None]:
    """Column values of a card that reached ``state`` the usual way, none of them due."""
    ordered = now - timedelta(days=rng.randint(40, 3000))
    produced = ordered + timedelta(days=35)
    received = produced + timedelta(days=rng.randint(5, 40))
    d: dict[str, datetime | date | str | None] = {
        "ordered_at": ordered,
        "ready_on": (ordered + timedelta(days=30)).date(),
        "produced_at": produced,
        "valid_until": date(produced.year + 10, produced.month, min(produced.day, 28)),
        "picked_up_at": received,
        "received_at": received,
        "activated_at": received + timedelta(hours=2),
        "activation_channel": rng.choice(("outlet", "hospital", "online")),
        "financial_activated_at": received + timedelta(hours=2),
    }
    fresh: dict[str, datetime | date | str | None] = {
        "activated_at": None,
        "activation_channel": None,
        "financial_activated_at": None,
    }
    if state is CardState.ORDERED:
        ordered = now - timedelta(days=rng.randint(1, 25))
        return fresh | {
            "ordered_at": ordered,
            "ready_on": (ordered + timedelta(days=42)).date(),
            "produced_at": None,
            "valid_until": None,
            "picked_up_at": None,
            "received_at": None,
        }
    if state is CardState.AT_OUTLET:
        return (
            d
            | fresh
            | {
                "produced_at": now - timedelta(days=rng.randint(2, 150)),
                "at_outlet_since": now - timedelta(days=rng.randint(1, 150)),
                "picked_up_at": None,
                "received_at": None,
            }
        )
    if state is CardState.WITH_UNIT:
        return (
            d
            | fresh
            | {
                "picked_up_at": now - timedelta(days=1),
                "received_at": None,
                "handout_due": (now + timedelta(days=5)).date(),
            }
        )
    if state is CardState.RECEIVED:
        got = now - timedelta(days=rng.randint(1, 150))
        return d | fresh | {"picked_up_at": got, "received_at": got}
    if state is CardState.LOST_ORAL:
        return d | {
            "state_before_loss": CardState.ACTIVE.value,
            "loss_reported_at": now - timedelta(days=1),
            "oral_loss_lapses_at": now + timedelta(days=4),
        }
    if state is CardState.LOST_WRITTEN:
        return d | {
            "state_before_loss": CardState.ACTIVE.value,
            "loss_reported_at": now - timedelta(days=rng.randint(1, 20)),
            "written_report_no": f"WR{rng.randrange(10**12):012d}",
        }
    if state is CardState.LOST_AUTO:
        got = now - timedelta(days=rng.randint(310, 600))
        return (
            d
            | fresh
            | {
                "picked_up_at": got,
                "received_at": got,
                "state_before_loss": CardState.RECEIVED.value,
                "loss_reported_at": got + timedelta(days=300),
            }
        )
    if state is CardState.DESTROYED and not old:  # unclaimed at the outlet (D-2)
        return d | fresh | {"picked_up_at": None, "received_at": None}
    return d  # active; an old card replaced, superseded or destroyed (V-3) after use


def _years_ago(value: datetime | date | str | None) -> datetime | date | str | None:
    if isinstance(value, datetime | date):
        return value - timedelta(days=3650)
    return value


_LAST_MOVE: dict[CardState, tuple[CardState, Action]] = {
    CardState.ORDERED: (CardState.ORDERED, Action.PRODUCE),
    CardState.AT_OUTLET: (CardState.ORDERED, Action.PRODUCE),
    CardState.WITH_UNIT: (CardState.AT_OUTLET, Action.PICKUP_BY_UNIT),
    CardState.RECEIVED: (CardState.AT_OUTLET, Action.PICKUP_BY_HOLDER),
    CardState.ACTIVE: (CardState.RECEIVED, Action.ACTIVATE),
    CardState.LOST_ORAL: (CardState.ACTIVE, Action.REPORT_LOST_ORAL),
    CardState.LOST_WRITTEN: (CardState.ACTIVE, Action.REPORT_LOST_WRITTEN),
    CardState.LOST_AUTO: (CardState.RECEIVED, Action.AUTO_REPORT_LOST),
    CardState.DESTROYED: (CardState.AT_OUTLET, Action.DESTROY_UNCLAIMED),
    CardState.REPLACED: (CardState.LOST_WRITTEN, Action.REPLACE),
    CardState.SUPERSEDED: (CardState.ACTIVE, Action.SUPERSEDE),
}


def build_chunk(plan: Plan, start: int, count: int) -> Chunk:
    """The COPY payloads of cardholders ``start`` .. ``start + count - 1``."""
    rng = random.Random(plan.seed * 1_000_003 + start)
    fake = Faker("zh_CN")
    fake.seed_instance(plan.seed * 1_000_003 + start)
    now, b = plan.now, plan.bases
    out: dict[str, list[str]] = {t: [] for t in ORDER}
    chunk = Chunk(copies={})
    weights = [w for _, w in STATES]
    kinds = [s for s, _ in STATES]
    for i in range(start, start + count):
        pid = b["persons"] + i
        number = citizen_id((plan.seed - 1) * MAX_CARDHOLDERS + i, plan.regions)
        roll = rng.random()
        unit_id: int | None
        if roll < 0.80:
            unit_id, bank = plan.units[rng.randrange(len(plan.units))]
            status, scheme = "employed", "employee"
        else:
            unit_id, bank = None, rng.choice(tuple(plan.outlets))
            status = "retired" if roll > 0.93 else "employed"
            scheme = "comprehensive" if roll < 0.87 else "employee"
        insured = date(rng.randint(1995, 2025), rng.randint(1, 12), 1)
        out["persons"].append(
            _line(
                (
                    pid,
                    sealed("persons", "id_number", number),
                    blind(SOCIAL, ID_NUMBER, number),
                    "citizen",
                    fake.name(),
                    "male" if int(number[16]) % 2 else "female",
                    f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
                    status,
                    f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                    unit_id,
                    scheme,
                    insured,
                    None,
                    "none",
                    now,
                    now,
                    1,
                )
            )
        )
        outlet = rng.choice(plan.outlets[bank])
        state = rng.choices(kinds, weights)[0]
        cards: list[tuple[int, CardState, int | None]] = [(2 * i, state, None)]
        if i % OLD_CARD_EVERY == OLD_CARD_EVERY - 1:
            state = CardState.ACTIVE
            cards = [(2 * i, state, None), (2 * i + 1, rng.choice(OLD_STATES), 2 * i)]
        for offset, card_state, replaced_by in cards:
            card_id, app_id = b["cards"] + offset, b["applications"] + offset
            dates = _card_dates(card_state, now, rng, old=replaced_by is not None)
            if replaced_by is not None:  # an older card: everything happened years ago
                dates = {k: _years_ago(v) for k, v in dates.items()}
            issued = dates["ordered_at"] - timedelta(days=10)  # type: ignore[operator]
            out["applications"].append(
                _line(
                    (
                        app_id,
                        f"F{app_id:012d}",
                        pid,
                        "unit_bundled" if unit_id else "individual",
                        "accepted",
                        bank,
                        outlet,
                        "id_card_authorisation",
                        "{}",
                        "[]",
                        issued,
                        issued + timedelta(days=3),
                        issued + timedelta(days=9),
                        1,
                    )
                )
            )
            bank_card = f"{BINS.get(bank, '622000')}{card_id:013d}"
            produced = dates.get("produced_at") is not None
            out["cards"].append(
                _line(
                    (
                        card_id,
                        pid,
                        app_id,
                        bank,
                        card_state.value,
                        dates.get("state_before_loss"),
                        f"SC{card_id:010d}",
                        f"SN{card_id:012d}",
                        sealed("cards", "bank_card_number", bank_card) if produced else None,
                        blind(SOCIAL, BANK_CARD_NUMBER, bank_card) if produced else None,
                        outlet,
                        unit_id,
                        dates["ordered_at"],
                        dates["ready_on"],
                        False,
                        dates.get("produced_at"),
                        dates.get("valid_until"),
                        dates.get("at_outlet_since"),
                        dates.get("picked_up_at"),
                        dates.get("handout_due"),
                        dates.get("received_at"),
                        dates.get("activated_at"),
                        dates.get("activation_channel"),
                        dates.get("financial_activated_at"),
                        dates.get("loss_reported_at"),
                        dates.get("oral_loss_lapses_at"),
                        dates.get("written_report_no"),
                        None if replaced_by is None else b["cards"] + replaced_by,
                        1,
                    )
                )
            )
            before, action = _LAST_MOVE[card_state]
            if replaced_by is not None and card_state is CardState.DESTROYED:
                before, action = CardState.ACTIVE, Action.DESTROY_OLD_SAME_BANK
            moved = (
                dates.get("loss_reported_at") or dates.get("activated_at") or dates["ordered_at"]
            )
            out["card_transitions"].append(
                _line(
                    (
                        b["card_transitions"] + offset,
                        card_id,
                        pid,
                        before.value,
                        card_state.value,
                        action.value,
                        Channel.OUTLET.value,
                        outlet,
                        moved,
                        "{}",
                    )
                )
            )
            chunk.states[card_state.value] += 1
        # The medical personal account, credited by one contribution.
        amount = rng.randint(*OPENING_BALANCE)
        account_id, txn_id = b["ledger_accounts"] + i, b["ledger_txns"] + i
        payer = unit_id if unit_id is not None else plan.center_id
        month = f"{now.year - 1}-{rng.randint(1, 12):02d}"
        out["ledger_accounts"].append(
            _line((account_id, AccountKind.PERSONAL.value, pid, None, 0, amount, now))
        )
        out["ledger_txns"].append(
            _line((txn_id, TxnKind.CONTRIBUTION.value, pid, payer, amount, now, "{}"))
        )
        out["ledger_entries"].append(
            _line((b["ledger_entries"] + 2 * i, txn_id, account_id, amount, now))
        )
        out["ledger_entries"].append(
            _line((b["ledger_entries"] + 2 * i + 1, txn_id, plan.pools[payer], -amount, now))
        )
        chunk.pool_debits[plan.pools[payer]] += amount
        if unit_id is not None:
            out["contributions"].append(
                _line((b["contributions"] + i, pid, unit_id, month, amount, txn_id, now))
            )
        if state in USABLE and plan.pin_verifiers:
            out["medical_passwords"].append(_line((pid, verifier(pid, BENCH_PIN), 0, now, 1)))
    chunk.copies = {t: "".join(lines) for t, lines in out.items()}
    return chunk


# ----------------------------------------------------------------- organizations


@dataclass
class Region:
    """What was generated, for the benchmarks and the report."""

    url: str
    cardholders: int
    first_person_id: int
    states: Counter[str]
    seconds: float
    hospital_id: int
    window_id: int
    center_id: int


def _organizations(rt: Runtime, cardholders: int, now: datetime, tag: str) -> Plan:
    """Units, outlets, a hospital, a bureau window and the fund pools, through the ORM."""
    with rt.uow() as uow:
        s = uow.session
        banks = list(s.scalars(select(Organization).where(Organization.kind == OrgKind.BANK.value)))

        def org(kind: OrgKind, code: str, **extra: Any) -> Organization:
            o = Organization(
                kind=kind.value, code=code, name=f"{kind.value} {code}", created_at=now, **extra
            )
            s.add(o)
            return o

        per_bank = max(1, cardholders // PER_OUTLET // len(banks))
        outlets = {
            bank.code: [
                org(
                    OrgKind.OUTLET,
                    f"{tag}O-{bank.code}-{k}",
                    parent_id=bank.id,
                    bank_code=bank.code,
                )
                for k in range(per_bank)
            ]
            for bank in banks
        }
        units = [org(OrgKind.UNIT, f"{tag}U{k}") for k in range(max(1, cardholders // PER_UNIT))]
        center = org(OrgKind.CENTER, f"{tag}CENTER")
        s.flush()
        for k, unit in enumerate(units):
            bank = banks[k % len(banks)].code
            body = f"91{rng_body(k, tag)}"
            from stdnum.cn import uscc

            s.add(
                Unit(
                    org_id=unit.id,
                    uscc=body + uscc.calc_check_digit(body),
                    unit_kind="ordinary",
                    agreement_bank_code=bank,
                    agreement_signed_at=now - timedelta(days=400),
                )
            )
        pools = {}
        for payer in [*units, center]:
            acct = LedgerAccount(
                kind=AccountKind.FUND_POOL.value, org_id=payer.id, balance_fen=0, created_at=now
            )
            s.add(acct)
            pools[payer] = acct
        s.flush()
        plan_units = tuple((u.id, banks[k % len(banks)].code) for k, u in enumerate(units))
        plan_outlets = {code: tuple(o.id for o in os_) for code, os_ in outlets.items()}
        pool_ids = {o.id: a.id for o, a in pools.items()}
        center_id = center.id
        uow.commit()
    return Plan(
        now=now,
        seed=0,
        bases={},
        units=plan_units,
        outlets=plan_outlets,
        pools=pool_ids,
        center_id=center_id,
        regions=region_codes(),
    )


def rng_body(k: int, tag: str) -> str:
    """The 15 characters after ``91`` of a unit's USCC: a region code and an org code."""
    salt = sum(map(ord, tag)) % 1000
    return f"441900{salt:03d}{k:06d}"


def _bases(conn: psycopg.Connection[Any], cardholders: int) -> dict[str, int]:
    """The first free id of each table; the sequences are moved past what is generated."""
    per = {"persons": 1, "applications": 2, "cards": 2, "card_transitions": 2}
    per |= {"ledger_accounts": 1, "ledger_txns": 1, "ledger_entries": 2, "contributions": 1}
    bases = {}
    for table in ID_TABLES:
        seq = f"{table}_id_seq"
        span = per[table] * cardholders
        # Reserve the ids: the sequence jumps past them in one statement.
        last = conn.execute("SELECT nextval(%s)", (seq,)).fetchone()
        assert last is not None
        bases[table] = int(last[0])
        conn.execute("SELECT setval(%s, %s)", (seq, bases[table] + span))
    return bases


def _copy(conn: psycopg.Connection[Any], chunk: Chunk) -> None:
    with conn.cursor() as cur:
        for table in ORDER:
            payload = chunk.copies.get(table)
            if payload:
                columns = ", ".join(COLUMNS[table])
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(payload)


def _chunks(cardholders: int) -> Iterator[tuple[int, int]]:
    for start in range(0, cardholders, CHUNK):
        yield start, min(CHUNK, cardholders - start)


def generate(
    url: str,
    *,
    cardholders: int = DEFAULT_CARDHOLDERS,
    seed: int = 1,
    workers: int = 2,
    show_progress: bool = True,
    now: datetime | None = None,
) -> Region:
    """Generate ``cardholders`` cardholders into the (migrated, or new) database at ``url``."""
    import time

    if not 1 <= cardholders <= MAX_CARDHOLDERS:
        raise ValueError(f"between 1 and {MAX_CARDHOLDERS} cardholders, not {cardholders}")
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    svc = prepare(url)
    tag = f"G{os.getpid() % 10_000}S{seed}-"
    try:
        plan = _organizations(svc.runtime, cardholders, now, tag)
        with svc.runtime.uow() as uow:
            s = uow.session
            hospital = Organization(
                kind=OrgKind.HOSPITAL.value,
                code=f"{tag}HOSPITAL",
                name="benchmark hospital",
                created_at=now,
            )
            window = Organization(
                kind=OrgKind.BUREAU_WINDOW.value,
                code=f"{tag}WINDOW",
                name="benchmark window",
                created_at=now,
            )
            s.add_all([hospital, window])
            uow.commit()
            hospital_id, window_id = hospital.id, window.id
    finally:
        svc.engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    states: Counter[str] = Counter()
    debits: Counter[int] = Counter()
    with psycopg.connect(dsn) as conn:
        bases = _bases(conn, cardholders)
        conn.commit()
        plan = Plan(**{**plan.__dict__, "bases": bases, "seed": seed})
        first_person = bases["persons"]
        with _progress(show_progress) as progress:
            task = progress.add_task("cardholders", total=cardholders)
            for chunk in _built(plan, cardholders, workers):
                _copy(conn, chunk)
                conn.commit()
                states += chunk.states
                debits += chunk.pool_debits
                progress.advance(task, _persons_in(chunk))
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE ledger_accounts SET balance_fen = balance_fen - %s WHERE id = %s",
                [(amount, account) for account, amount in debits.items()],
            )
        conn.commit()
        conn.autocommit = True
        for table in ORDER:
            conn.execute(f"ANALYZE {table}")
    return Region(
        url=url,
        cardholders=cardholders,
        first_person_id=first_person,
        states=states,
        seconds=time.perf_counter() - started,
        hospital_id=hospital_id,
        window_id=window_id,
        center_id=plan.center_id,
    )


def _persons_in(chunk: Chunk) -> int:
    return chunk.copies["persons"].count("\n")


def _built(plan: Plan, cardholders: int, workers: int) -> Iterator[Chunk]:
    """The chunks in order, built by ``workers`` processes (or here, for one)."""
    if workers <= 1:
        for start, count in _chunks(cardholders):
            yield build_chunk(plan, start, count)
        return
    # Spawned, not forked: the parent holds a database connection. The children read the
    # same keys (SSCARD_KEY_DIR and the key variables are in their environment).
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending = [
            pool.submit(build_chunk, plan, start, count) for start, count in _chunks(cardholders)
        ]
        for future in pending:
            yield future.result()


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *_args: object, **_kw: object) -> int:
        return 0

    def advance(self, *_args: object) -> None:
        return None


def _progress(show: bool) -> Any:
    if not show:
        return _Quiet()
    return Progress(
        *Progress.get_default_columns()[:-1],
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    p.add_argument("--database", required=True, help="a PostgreSQL URL (migrated if new)")
    p.add_argument("--cardholders", type=int, default=DEFAULT_CARDHOLDERS)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=2, help="processes that build the rows")
    args = p.parse_args(argv)
    region = generate(
        args.database, cardholders=args.cardholders, seed=args.seed, workers=args.workers
    )
    print(
        f"{region.cardholders:,} cardholders in {region.seconds:.1f} s "
        f"({region.cardholders / region.seconds:,.0f}/s); cards: {dict(region.states)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
