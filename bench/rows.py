"""The rows of a generated region, built in a worker process as COPY text.

See ``bench.generate`` for what a region holds. Everything here is pure computation (no
database): ID numbers, names, card lives, accounts, and the stored form of sealed values
(the columns' own ``EncryptedString`` type, ``blind``, ``verifier``).
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from faker import Faker
from sqlalchemy import Dialect
from sqlalchemy.dialects import postgresql

from sscard.accounts.model import AccountKind, TxnKind
from sscard.accounts.passwords import verifier
from sscard.cards.model import Action, CardState
from sscard.cards.tables import Card
from sscard.core.ids import make_citizen_id
from sscard.core.policy import Channel
from sscard.core.protect import BANK_CARD_NUMBER, ID_NUMBER, SOCIAL
from sscard.db.types import EncryptedString, blind
from sscard.register.tables import Person

MAX_CARDHOLDERS = 10_000_000
BENCH_PIN = "482913"  # every generated consumption password: benchmark data only
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
