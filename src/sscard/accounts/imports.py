"""Crediting medical accounts from files: a unit's monthly contributions, and the
balances of old medical insurance cards taken over from the previous system.

Same contract as the register imports: every line is checked first (one query per
chunk), nothing is written if any line is bad unless ``skip_invalid``, and what is
written goes in one transaction with batched statements.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from sscard.access.model import Actor, require
from sscard.accounts.ledger import account
from sscard.accounts.model import AccountKind, TxnKind, check_amount
from sscard.accounts.tables import Contribution, LedgerAccount, LedgerEntry, LedgerTxn
from sscard.audit.service import record_many
from sscard.core.errors import InvalidInput
from sscard.core.ids import parse_id_number
from sscard.core.protect import ID_NUMBER, SOCIAL
from sscard.db.engine import UnitOfWork
from sscard.db.types import blinds_of
from sscard.register.importer import (
    CHUNK,
    ImportReport,
    LineError,
    Progress,
    check_lines,
    chunks,
    read_chunks,
)
from sscard.register.model import OldCardState, OrgKind
from sscard.register.service import org_by_code
from sscard.register.tables import Person
from sscard.runtime import Runtime

CONTRIBUTION_COLUMNS = ("id_number", "month", "amount_fen")
OLD_CARD_COLUMNS = ("id_number", "balance_fen")
MONTH = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")


def _amount(raw: str, field: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", raw or ""):
        raise InvalidInput(
            f"{field} is a whole number of fen, e.g. 15000 for 150 yuan", field=field
        )
    return check_amount(int(raw), field)


def _person_ids(s: Session, id_numbers: list[str], *where: ColumnElement[bool]) -> dict[str, int]:
    """ID number → person id of the persons with these ID numbers (found by their blind
    index, in one query) that also meet ``where``."""
    hashes = blinds_of(SOCIAL, ID_NUMBER, id_numbers)
    return {
        hashes[h]: pid
        for h, pid in s.execute(
            select(Person.id_number_hash, Person.id).where(
                Person.id_number_hash.in_(list(hashes)), *where
            )
        ).all()
    }


def _personal_accounts(
    s: Session, person_ids: Iterable[int], now: Any, kind: AccountKind = AccountKind.PERSONAL
) -> dict[int, int]:
    """person id → ledger account id, opening the missing ones in one INSERT."""
    wanted = set(person_ids)
    found = dict(
        s.execute(
            select(LedgerAccount.person_id, LedgerAccount.id).where(
                LedgerAccount.kind == kind.value, LedgerAccount.person_id.in_(wanted)
            )
        ).all()
    )
    missing = sorted(wanted - set(found))
    if missing:
        s.execute(
            insert(LedgerAccount),
            [
                {
                    "kind": kind.value,
                    "person_id": p,
                    "org_id": None,
                    "balance_fen": 0,
                    "created_at": now,
                }
                for p in missing
            ],
        )
        found |= dict(
            s.execute(
                select(LedgerAccount.person_id, LedgerAccount.id).where(
                    LedgerAccount.kind == kind.value, LedgerAccount.person_id.in_(missing)
                )
            ).all()
        )
    return {int(k or 0): int(v) for k, v in found.items()}


def _write(
    s: Session,
    rt: Runtime,
    *,
    kind: TxnKind,
    actor: Actor,
    lines: list[dict[str, Any]],
    credit: dict[int, int],
    counter_id: int,
    org_id: int | None,
    source: str,
) -> list[int]:
    """Post one transaction per line (credit the person's account, debit the counter
    account), with one INSERT per table and one UPDATE per account side."""
    now = rt.now()
    txn_ids = (
        s.execute(
            insert(LedgerTxn).returning(LedgerTxn.id, sort_by_parameter_order=True),
            [
                {
                    "kind": kind.value,
                    "person_id": ln["person_id"],
                    "org_id": org_id,
                    "card_id": None,
                    "amount_fen": ln["amount"],
                    "request_key": None,
                    "request_fingerprint": None,
                    "refund_of_id": None,
                    "actor_staff_id": actor.staff_id,
                    "created_at": now,
                    "detail": {
                        "source": source,
                        **({"month": ln["month"]} if "month" in ln else {}),
                    },
                }
                for ln in lines
            ],
        )
        .scalars()
        .all()
    )
    entries = []
    for txn_id, ln in zip(txn_ids, lines, strict=True):
        entries.append(
            {
                "txn_id": txn_id,
                "account_id": credit[ln["person_id"]],
                "amount_fen": ln["amount"],
                "created_at": now,
            }
        )
        entries.append(
            {
                "txn_id": txn_id,
                "account_id": counter_id,
                "amount_fen": -ln["amount"],
                "created_at": now,
            }
        )
    s.execute(insert(LedgerEntry), entries)
    per_account: dict[int, int] = {}
    for ln in lines:
        acc = credit[ln["person_id"]]
        per_account[acc] = per_account.get(acc, 0) + ln["amount"]
    table = cast(Table, LedgerAccount.__table__)
    s.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(balance_fen=table.c.balance_fen + bindparam("b_amount")),
        [{"b_id": a, "b_amount": v} for a, v in per_account.items()],
    )
    s.execute(
        update(LedgerAccount)
        .where(LedgerAccount.id == counter_id)
        .values(balance_fen=LedgerAccount.balance_fen - sum(per_account.values()))
        .execution_options(synchronize_session=False)
    )
    record_many(
        s,
        actor=actor,
        at=now,
        action=f"medical_account.{kind.value}",
        subject_type="ledger_txn",
        channel="import",
        entries=(
            (t, ln["person_id"], {"amount_fen": ln["amount"], "source": source})
            for t, ln in zip(txn_ids, lines, strict=True)
        ),
    )
    return list(txn_ids)


def _parse_contribution(raw: dict[str, str]) -> dict[str, Any]:
    month = raw.get("month", "")
    number = parse_id_number(raw.get("id_number", "")).number
    if not MONTH.fullmatch(month):
        raise InvalidInput("month is YYYY-MM, e.g. 2026-10", field="month")
    return {
        "id_number": number,
        "month": month,
        "amount": _amount(raw.get("amount_fen", ""), "amount_fen"),
    }


def _parse_old_card(raw: dict[str, str]) -> dict[str, Any]:
    return {
        "id_number": parse_id_number(raw.get("id_number", "")).number,
        "amount": _amount(raw.get("balance_fen", ""), "balance_fen"),
    }


def import_contributions(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    unit_code: str,
    path: Path,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """C-4: a unit's monthly contribution file credits its insured persons' accounts."""
    require(actor, "accounts.contributions")
    s = uow.session
    unit = org_by_code(s, unit_code, kind=OrgKind.UNIT)
    report = ImportReport()
    valid: list[dict[str, Any]] = []
    seen: set[Hashable] = set()
    for chunk in read_chunks(path, CONTRIBUTION_COLUMNS, report, progress):
        good = check_lines(
            chunk,
            report,
            _parse_contribution,
            keys=lambda g: [(g["id_number"], g["month"])],
            seen=seen,
            repeated=("month", "this person's month appears earlier"),
        )
        persons = _person_ids(s, [g["id_number"] for g in good], Person.unit_org_id == unit.id)
        done = set(
            s.execute(
                select(Contribution.person_id, Contribution.month).where(
                    Contribution.unit_org_id == unit.id,
                    Contribution.person_id.in_(list(persons.values())),
                )
            ).all()
        )
        for g in good:
            pid = persons.get(g["id_number"])
            if pid is None:
                report.errors.append(
                    LineError(g["line"], "id_number", f"not an insured person of unit {unit_code}")
                )
            elif (pid, g["month"]) in done:
                report.errors.append(
                    LineError(g["line"], "month", f"{g['month']} was already imported")
                )
            else:
                valid.append(g | {"person_id": pid})
    if report.errors and not skip_invalid:
        return report
    now = rt.now()
    pool = account(s, AccountKind.FUND_POOL, org_id=unit.id, now=now)
    for lines in chunks(valid, CHUNK):
        credit = _personal_accounts(s, [ln["person_id"] for ln in lines], now)
        txn_ids = _write(
            s,
            rt,
            kind=TxnKind.CONTRIBUTION,
            actor=actor,
            lines=lines,
            credit=credit,
            counter_id=pool.id,
            org_id=unit.id,
            source=path.name,
        )
        s.execute(
            insert(Contribution),
            [
                {
                    "person_id": ln["person_id"],
                    "unit_org_id": unit.id,
                    "month": ln["month"],
                    "amount_fen": ln["amount"],
                    "txn_id": t,
                    "created_at": now,
                }
                for t, ln in zip(txn_ids, lines, strict=True)
            ],
        )
        report.written += len(lines)
    uow.commit()
    return report


def import_old_card_balances(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    path: Path,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Take over old medical insurance cards' balances; they move to the personal
    account when the new card is first used at a pharmacy (V-1)."""
    require(actor, "accounts.contributions")
    s = uow.session
    report = ImportReport()
    valid: list[dict[str, Any]] = []
    seen: set[Hashable] = set()
    for chunk in read_chunks(path, OLD_CARD_COLUMNS, report, progress):
        good = check_lines(
            chunk,
            report,
            _parse_old_card,
            keys=lambda g: [g["id_number"]],
            seen=seen,
            repeated=("id_number", "this person appears earlier in the file"),
        )
        persons = _person_ids(
            s,
            [g["id_number"] for g in good],
            Person.old_medical_card_no.is_not(None),
            Person.old_medical_card_state.in_(
                [OldCardState.NORMAL.value, OldCardState.RESTRICTED.value]
            ),
        )
        taken = set(
            s.scalars(
                select(LedgerTxn.person_id).where(
                    LedgerTxn.kind == TxnKind.OLD_CARD_OPENING.value,
                    LedgerTxn.person_id.in_(list(persons.values())),
                )
            )
        )
        for g in good:
            pid = persons.get(g["id_number"])
            if pid is None:
                report.errors.append(
                    LineError(
                        g["line"],
                        "id_number",
                        "no registered person whose old medical card is still open",
                    )
                )
            elif pid in taken:
                report.errors.append(
                    LineError(
                        g["line"], "id_number", "this old card's balance was already taken over"
                    )
                )
            else:
                valid.append(g | {"person_id": pid})
    if report.errors and not skip_invalid:
        return report
    now = rt.now()
    legacy = account(s, AccountKind.LEGACY, now=now)
    for lines in chunks(valid, CHUNK):
        credit = _personal_accounts(
            s, [ln["person_id"] for ln in lines], now, kind=AccountKind.OLD_CARD
        )
        _write(
            s,
            rt,
            kind=TxnKind.OLD_CARD_OPENING,
            actor=actor,
            lines=lines,
            credit=credit,
            counter_id=legacy.id,
            org_id=None,
            source=path.name,
        )
        report.written += len(lines)
    uow.commit()
    return report
