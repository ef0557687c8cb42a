"""Crediting medical accounts from files: a unit's monthly contributions, and the
balances of old medical insurance cards taken over from the previous system.

Same contract as the register imports: every line is checked first, nothing is
written if any line is bad unless ``skip_invalid``, and what is written goes in one
transaction. Bulk paths (``sscard.db.bulk``): the checked lines (person ids, months,
amounts; never an ID number) are loaded into a staging table (COPY on PostgreSQL), the
checks against the database are joins on it, and the accounts, transactions, entries,
balances, contributions, audit records and partner events are each written by one
statement over it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from sscard.access.model import Actor, require
from sscard.accounts.ledger import account
from sscard.accounts.model import AccountKind, TxnKind, check_amount
from sscard.accounts.tables import Contribution, LedgerAccount, LedgerEntry, LedgerTxn
from sscard.audit.service import record_select
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.ids import parse_id_number
from sscard.core.protect import ID_NUMBER, SOCIAL, keyrings
from sscard.db.base import UTCDateTime, table
from sscard.db.bulk import analyze, const, json_object, load, next_ids, staging
from sscard.db.engine import UnitOfWork
from sscard.register.importer import (
    ImportReport,
    LineError,
    Progress,
    check_lines,
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
    index: the hashes go into a staging table, one join finds them) that also meet
    ``where``."""
    numbers = list(dict.fromkeys(id_numbers))
    ring = keyrings(SOCIAL).index
    with staging(s, "stage_person_keys", Column("k", BigInteger), Column("h", String)) as keys:
        load(
            s,
            keys,
            ("k", "h"),
            ((k, h) for k, n in enumerate(numbers) for h in ring.blinds(n, kind=ID_NUMBER)),
        )
        analyze(s, keys)
        found = s.execute(
            select(keys.c.k, Person.id)
            .join(Person, Person.id_number_hash == keys.c.h)
            .where(*where)
        ).all()
    return {numbers[k]: pid for k, pid in found}


def _line_columns() -> list[Column[Any]]:
    """The staging table of a file's checked lines: no personal data, only person ids,
    months and amounts (``txn_id`` is filled when they are posted)."""
    return [
        Column("seq", BigInteger),
        Column("line", BigInteger),
        Column("person_id", BigInteger),
        Column("month", String(7)),
        Column("amount", BigInteger),
        Column("txn_id", BigInteger),
    ]


def _post(
    s: Session,
    rt: Runtime,
    staged: Table,
    *,
    kind: TxnKind,
    actor: Actor,
    account_kind: AccountKind,
    counter_id: int,
    org_id: int | None,
    source: str,
) -> None:
    """Post one transaction per staged line (credit the person's ``account_kind``
    account, debit the counter account) set-based: the missing accounts opened, the
    transactions, their entries, the balances and their audit records, each in one
    statement over the staging table."""
    now = rt.now()
    accounts = table(LedgerAccount)
    txns = table(LedgerTxn)
    entries = table(LedgerEntry)
    at = const(s, now, UTCDateTime())
    kind_value = const(s, account_kind.value, String())
    mine = and_(accounts.c.kind == account_kind.value, accounts.c.person_id == staged.c.person_id)
    s.execute(
        insert(accounts).from_select(
            ["kind", "person_id", "org_id", "balance_fen", "created_at"],
            select(
                kind_value,
                staged.c.person_id,
                const(s, None, BigInteger()),
                const(s, 0, BigInteger()),
                at,
            )
            .where(~exists().where(mine))
            .group_by(staged.c.person_id)
            .order_by(staged.c.person_id),
        )
    )
    next_ids(s, staged, "txn_id", txns)
    detail: dict[str, Any] = {"source": source}
    if kind is TxnKind.CONTRIBUTION:
        detail["month"] = staged.c.month
    s.execute(
        insert(txns).from_select(
            [
                "id",
                "kind",
                "person_id",
                "org_id",
                "amount_fen",
                "actor_staff_id",
                "created_at",
                "detail",
            ],
            select(
                staged.c.txn_id,
                const(s, kind.value, String()),
                staged.c.person_id,
                const(s, org_id, BigInteger()),
                staged.c.amount,
                const(s, actor.staff_id, BigInteger()),
                at,
                json_object(s, detail),
            ).order_by(staged.c.seq),
        )
    )
    credit = select(
        staged.c.txn_id.label("txn_id"),
        accounts.c.id.label("account_id"),
        staged.c.amount.label("amount_fen"),
        const(s, 0, BigInteger()).label("side"),
    ).join(accounts, mine)
    debit = select(
        staged.c.txn_id,
        const(s, counter_id, BigInteger()),
        -staged.c.amount,
        const(s, 1, BigInteger()),
    )
    both = union_all(credit, debit).subquery()
    s.execute(  # each transaction's credit, then its debit
        insert(entries).from_select(
            ["txn_id", "account_id", "amount_fen", "created_at"],
            select(both.c.txn_id, both.c.account_id, both.c.amount_fen, at).order_by(
                both.c.txn_id, both.c.side
            ),
        )
    )
    totals = (
        select(staged.c.person_id, func.sum(staged.c.amount).label("total"))
        .group_by(staged.c.person_id)
        .subquery()
    )
    s.execute(
        update(accounts)
        .where(accounts.c.kind == account_kind.value, accounts.c.person_id == totals.c.person_id)
        .values(balance_fen=accounts.c.balance_fen + totals.c.total)
    )
    s.execute(
        update(accounts)
        .where(accounts.c.id == counter_id)
        .values(
            balance_fen=accounts.c.balance_fen
            - select(func.coalesce(func.sum(staged.c.amount), 0)).scalar_subquery()
        )
    )
    record_select(
        s,
        actor=actor,
        at=now,
        action=f"medical_account.{kind.value}",
        subject_type="ledger_txn",
        channel="import",
        rows=select(
            staged.c.txn_id.label("subject_id"),
            staged.c.person_id.label("person_id"),
            staged.c.amount.label("amount_fen"),
        ),
        detail={"source": source},
    )


def _contribution_parser() -> Callable[[dict[str, str]], dict[str, Any]]:
    """``_parse_contribution`` checking each distinct ID number once (a unit's file
    repeats every person once a month)."""
    numbers: dict[str, str | DomainError] = {}

    def parse(raw: dict[str, str]) -> dict[str, Any]:
        given = raw.get("id_number", "")
        number = numbers.get(given)
        if number is None:
            try:
                number = parse_id_number(given).number
            except DomainError as exc:
                number = exc
            numbers[given] = number
        if isinstance(number, DomainError):
            raise number
        return _parse_contribution(raw, number)

    return parse


def _parse_contribution(raw: dict[str, str], number: str | None = None) -> dict[str, Any]:
    month = raw.get("month", "")
    number = number or parse_id_number(raw.get("id_number", "")).number
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


def _stage_and_check(
    s: Session,
    good: list[dict[str, Any]],
    report: ImportReport,
    staged: Table,
    *,
    not_found: str,
    taken: tuple[Select[Any], Callable[[Any], LineError]],
    where: tuple[ColumnElement[bool], ...],
    skip_invalid: bool,
) -> None:
    """Find each good line's person (``where``), stage the found lines, report the
    others and those ``taken`` finds already written (a SELECT of the staged lines that
    clash); with ``skip_invalid`` the clashing lines leave the staging table."""
    persons = _person_ids(s, [g["id_number"] for g in good], *where)
    rows: list[tuple[Any, ...]] = []
    for g in good:
        pid = persons.get(g["id_number"])
        if pid is None:
            report.errors.append(LineError(g["line"], "id_number", not_found))
        else:
            rows.append((len(rows) + 1, g["line"], pid, g.get("month"), g["amount"]))
    load(s, staged, ("seq", "line", "person_id", "month", "amount"), rows)
    analyze(s, staged)
    clash, error = taken
    bad = s.execute(clash.order_by(staged.c.line)).all()
    report.errors.extend(error(row) for row in bad)
    if bad and skip_invalid:
        s.execute(delete(staged).where(staged.c.line.in_([row.line for row in bad])))


def _lines(
    path: Path,
    columns: tuple[str, ...],
    report: ImportReport,
    progress: Progress | None,
    parse: Callable[[dict[str, str]], dict[str, Any]],
    keys: Callable[[dict[str, Any]], Iterable[Hashable]],
    repeated: tuple[str, str],
) -> list[dict[str, Any]]:
    """Every line of the file parsed (errors and repeats reported), the good ones kept."""
    seen: set[Hashable] = set()
    good: list[dict[str, Any]] = []
    for chunk in read_chunks(path, columns, report, progress):
        good += check_lines(chunk, report, parse, keys=keys, seen=seen, repeated=repeated)
    return good


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
    good = _lines(
        path,
        CONTRIBUTION_COLUMNS,
        report,
        progress,
        _contribution_parser(),
        lambda g: [(g["id_number"], g["month"])],
        ("month", "this person's month appears earlier"),
    )
    with staging(s, "stage_ledger_lines", *_line_columns()) as staged:
        done = and_(
            Contribution.person_id == staged.c.person_id,
            Contribution.unit_org_id == unit.id,
            Contribution.month == staged.c.month,
        )
        _stage_and_check(
            s,
            good,
            report,
            staged,
            not_found=f"not an insured person of unit {unit_code}",
            taken=(
                select(staged.c.line, staged.c.month).where(exists().where(done)),
                lambda row: LineError(row.line, "month", f"{row.month} was already imported"),
            ),
            where=(Person.unit_org_id == unit.id,),
            skip_invalid=skip_invalid,
        )
        if report.errors and not skip_invalid:
            return report
        now = rt.now()
        pool = account(s, AccountKind.FUND_POOL, org_id=unit.id, now=now)
        _post(
            s,
            rt,
            staged,
            kind=TxnKind.CONTRIBUTION,
            actor=actor,
            account_kind=AccountKind.PERSONAL,
            counter_id=pool.id,
            org_id=unit.id,
            source=path.name,
        )
        contributions = table(Contribution)
        s.execute(
            insert(contributions).from_select(
                ["person_id", "unit_org_id", "month", "amount_fen", "txn_id", "created_at"],
                select(
                    staged.c.person_id,
                    const(s, unit.id, BigInteger()),
                    staged.c.month,
                    staged.c.amount,
                    staged.c.txn_id,
                    const(s, now, UTCDateTime()),
                ).order_by(staged.c.seq),
            )
        )
        report.written = s.scalar(select(func.count()).select_from(staged)) or 0
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
    good = _lines(
        path,
        OLD_CARD_COLUMNS,
        report,
        progress,
        _parse_old_card,
        lambda g: [g["id_number"]],
        ("id_number", "this person appears earlier in the file"),
    )
    with staging(s, "stage_ledger_lines", *_line_columns()) as staged:
        opened = and_(
            LedgerTxn.kind == TxnKind.OLD_CARD_OPENING.value,
            LedgerTxn.person_id == staged.c.person_id,
        )
        _stage_and_check(
            s,
            good,
            report,
            staged,
            not_found="no registered person whose old medical card is still open",
            taken=(
                select(staged.c.line).where(exists().where(opened)),
                lambda row: LineError(
                    row.line, "id_number", "this old card's balance was already taken over"
                ),
            ),
            where=(
                Person.old_medical_card_no.is_not(None),
                Person.old_medical_card_state.in_(
                    [OldCardState.NORMAL.value, OldCardState.RESTRICTED.value]
                ),
            ),
            skip_invalid=skip_invalid,
        )
        if report.errors and not skip_invalid:
            return report
        legacy = account(s, AccountKind.LEGACY, now=rt.now())
        _post(
            s,
            rt,
            staged,
            kind=TxnKind.OLD_CARD_OPENING,
            actor=actor,
            account_kind=AccountKind.OLD_CARD,
            counter_id=legacy.id,
            org_id=None,
            source=path.name,
        )
        report.written = s.scalar(select(func.count()).select_from(staged)) or 0
    uow.commit()
    return report
