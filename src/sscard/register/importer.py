"""CSV imports of persons and units: set-based, all-or-nothing, with a line-by-line report.

A file is checked completely first (every line in Python, then against the database
with one join over a staging table); if any line is bad nothing is written and the
report names each bad line. ``skip_invalid`` writes the good lines instead.
Everything that is written is written in one transaction, on the bulk paths of
``sscard.db.bulk``: the rows in their stored form (sealed, blind-indexed) are loaded
into a staging table (COPY on PostgreSQL), then the table, its audit records and their
partner events are each written by one INSERT … SELECT.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import BigInteger, Column, String, case, delete, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, require
from sscard.applications.model import choose_bank
from sscard.audit.service import record_select
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.ids import parse_uscc
from sscard.core.policy import UnitKind
from sscard.core.protect import ID_NUMBER, SOCIAL, keyrings
from sscard.db.base import UTCDateTime, table
from sscard.db.bulk import analyze, const, load, next_ids, staging
from sscard.db.engine import UnitOfWork
from sscard.db.types import EncryptedString
from sscard.register.model import OrgKind
from sscard.register.service import ORG_CODE, PersonInput, check_person, clean_name
from sscard.register.tables import Organization, Person, Unit
from sscard.runtime import Runtime

CHUNK = 2000
PERSON_COLUMNS = (
    "id_number",
    "name",
    "status",
    "phone",
    "unit_code",
    "medical_scheme",
    "insured_since",
    "old_medical_card_no",
)
UNIT_COLUMNS = ("code", "name", "uscc", "unit_kind", "agreement_bank_code")


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    read: int = 0
    written: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


Progress = Callable[[int], None]


def read_rows(handle: TextIO, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(handle)
    header = [h.strip() for h in next(reader, None) or []]
    missing = [c for c in columns[:2] if c not in header]
    unknown = [h for h in header if h not in columns]
    if missing or unknown:
        raise InvalidInput(
            f"the header must name columns from: {', '.join(columns)} "
            f"(missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'})",
            field="header",
        )
    named = [(i, h) for i, h in enumerate(header) if h]
    for row in reader:  # a plain reader: a dict per line built once (DictReader builds two)
        if row:
            width = len(row)
            yield reader.line_num, {h: row[i].strip() for i, h in named if i < width}


def check_lines(
    chunk: list[tuple[int, dict[str, str]]],
    report: ImportReport,
    parse: Callable[[dict[str, str]], dict[str, Any]],
    *,
    keys: Callable[[dict[str, Any]], Iterable[Hashable]],
    seen: set[Hashable],
    repeated: tuple[str, str],
    columns: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Parse each line of a chunk; report a refused line or one that repeats an earlier
    line (by any of its ``keys``) with its line number; return the good ones, each
    with its ``line``. ``columns`` renames an error's field to the file's column."""
    good = []
    for line, raw in chunk:
        try:
            value = parse(raw)
        except DomainError as exc:
            field = exc.field or ""
            report.errors.append(LineError(line, (columns or {}).get(field, field), exc.detail))
            continue
        found = list(keys(value))
        if any(k in seen for k in found):
            report.errors.append(LineError(line, *repeated))
            continue
        seen.update(found)
        good.append(value | {"line": line})
    return good


def read_chunks(
    path: Path, columns: tuple[str, ...], report: ImportReport, progress: Progress | None
) -> Iterator[list[tuple[int, dict[str, str]]]]:
    """The file's lines in chunks of CHUNK, counted in ``report`` and shown by ``progress``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for chunk in chunks(read_rows(handle, columns), CHUNK):
            report.read += len(chunk)
            yield chunk
            if progress:
                progress(len(chunk))


def chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse_persons(rt: Runtime) -> Callable[[dict[str, str]], dict[str, Any]]:
    today = rt.today()

    def parse(raw: dict[str, str]) -> dict[str, Any]:
        since = raw.get("insured_since") or None
        values = check_person(
            PersonInput(
                id_number=raw.get("id_number", ""),
                name=raw.get("name", ""),
                status=raw.get("status") or "employed",
                phone=raw.get("phone") or None,
                medical_scheme=raw.get("medical_scheme") or "employee",
                insured_since=_date(since, "insured_since") if since else None,
                old_medical_card_no=raw.get("old_medical_card_no") or None,
            ),
            today=today,
        )
        return {"values": values, "unit_code": raw.get("unit_code") or None}

    return parse


def _registered(s: Session, good: list[dict[str, Any]]) -> set[int]:
    """The lines whose ID number is registered: their blind indexes under every
    configured version go into a staging table, one join finds them."""
    ring = keyrings(SOCIAL).index
    with staging(s, "stage_person_keys", Column("k", BigInteger), Column("h", String)) as keys:
        load(
            s,
            keys,
            ("k", "h"),
            (
                (g["line"], h)
                for g in good
                for h in ring.blinds(g["values"]["id_number"], kind=ID_NUMBER)
            ),
        )
        analyze(s, keys)
        return set(
            s.scalars(select(keys.c.k).join(Person, Person.id_number_hash == keys.c.h).distinct())
        )


def _units(s: Session, good: list[dict[str, Any]]) -> dict[str, int]:
    codes = {g["unit_code"] for g in good if g["unit_code"]}
    return dict(
        s.execute(
            select(Organization.code, Organization.id).where(
                Organization.code.in_(codes), Organization.kind == OrgKind.UNIT
            )
        ).all()
    )


# A person as stored: the sealed columns sealed, the blind index made (never plaintext).
_PERSON_STAGED = (
    "seq",
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
)


def _person_stage_columns() -> list[Column[Any]]:
    persons = table(Person)
    return [Column("seq", BigInteger), Column("id", BigInteger)] + [
        Column(
            name,
            String if isinstance(persons.c[name].type, EncryptedString) else persons.c[name].type,
        )
        for name in _PERSON_STAGED[1:]
    ]


def _stored_persons(good: list[dict[str, Any]], units: dict[str, int]) -> Iterator[tuple[Any, ...]]:
    """Each good line as its staged row: values sealed by the columns' own types."""
    persons = table(Person)
    id_type = persons.c.id_number.type
    card_type = persons.c.old_medical_card_no.type
    assert isinstance(id_type, EncryptedString)
    assert isinstance(card_type, EncryptedString)
    seal_id, seal_card = keyrings(id_type.side).data.seal, keyrings(card_type.side).data.seal
    index = keyrings(SOCIAL).index
    for seq, g in enumerate(good, start=1):
        v = g["values"]
        number = v["id_number"]
        card = v["old_medical_card_no"]
        yield (
            seq,
            seal_id(number, context=id_type.context),
            index.blind(number, kind=ID_NUMBER),
            v["id_kind"],
            v["name"],
            v["gender"],
            v["birth_date"],
            v["status"],
            v["phone"],
            units.get(g["unit_code"]) if g["unit_code"] else None,
            v["medical_scheme"],
            v["insured_since"],
            None if card is None else seal_card(card, context=card_type.context),
            v["old_medical_card_state"],
        )


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a date YYYY-MM-DD", field=field) from None


def import_persons(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    path: Path,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import insured persons from CSV (columns: PERSON_COLUMNS)."""
    require(actor, "register.write")
    s = uow.session
    report = ImportReport()
    seen: set[Hashable] = set()
    parse = _parse_persons(rt)
    good: list[dict[str, Any]] = []
    for chunk in read_chunks(path, PERSON_COLUMNS, report, progress):
        good += [
            {"line": g["line"], "values": g["values"], "unit_code": g["unit_code"]}
            for g in check_lines(
                chunk,
                report,
                parse,
                keys=lambda g: [g["values"]["id_number"]],
                seen=seen,
                repeated=("id_number", "this ID number appears earlier in the file"),
            )
        ]
    registered = _registered(s, good)
    units = _units(s, good)
    rows = []
    for g in good:
        code = g["unit_code"]
        if g["line"] in registered:
            report.errors.append(
                LineError(g["line"], "id_number", "a person with this ID number is registered")
            )
        elif code and code not in units:
            report.errors.append(LineError(g["line"], "unit_code", f"no unit with code '{code}'"))
        else:
            rows.append(g)
    if report.errors and not skip_invalid:
        return report
    now = rt.now()
    persons = table(Person)
    with staging(s, "stage_persons", *_person_stage_columns()) as staged:
        report.written = load(s, staged, _PERSON_STAGED, _stored_persons(rows, units))
        analyze(s, staged)
        next_ids(s, staged, "id", persons)
        at = const(s, now, UTCDateTime())
        s.execute(
            insert(persons).from_select(
                ["id", *_PERSON_STAGED[1:], "created_at", "updated_at", "version"],
                select(
                    staged.c.id,
                    *(staged.c[name] for name in _PERSON_STAGED[1:]),
                    at,
                    at,
                    const(s, 1, BigInteger()),
                ).order_by(staged.c.seq),
            )
        )
        record_select(
            s,
            actor=actor,
            at=now,
            action="person.registered",
            subject_type="person",
            channel="import",
            rows=select(staged.c.id.label("subject_id"), staged.c.id.label("person_id")),
            detail={"source": path.name},
        )
    uow.commit()
    return report


def _parse_unit(rt: Runtime, raw: dict[str, str]) -> dict[str, Any]:
    code = raw.get("code", "")
    if not ORG_CODE.match(code):
        raise InvalidInput("code must be 2-32 letters, digits, '-' or '_'", field="code")
    try:
        unit_kind = UnitKind(raw.get("unit_kind") or "ordinary")
    except ValueError:
        raise InvalidInput("unit_kind must be " + ", ".join(UnitKind), field="unit_kind") from None
    bank = raw.get("agreement_bank_code") or None
    if bank:
        choose_bank(rt.policy, bank, unit_kind=unit_kind, scheme=None)
    return {
        "code": code,
        "name": clean_name(raw.get("name", "")),
        "uscc": parse_uscc(raw.get("uscc", "")),
        "unit_kind": unit_kind.value,
        "bank": bank,
    }


def import_units(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    path: Path,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import insured units from CSV (columns: UNIT_COLUMNS)."""
    require(actor, "register.write")
    s = uow.session
    report = ImportReport()
    seen: set[Hashable] = set()
    good: list[dict[str, Any]] = []
    for chunk in read_chunks(path, UNIT_COLUMNS, report, progress):
        good += check_lines(
            chunk,
            report,
            lambda raw: _parse_unit(rt, raw),
            keys=lambda g: [("code", g["code"]), ("uscc", g["uscc"])],
            seen=seen,
            repeated=("code", "code or USCC appears earlier in the file"),
            columns={"bank_code": "agreement_bank_code"},
        )
    columns = ("seq", "line", "code", "name", "uscc", "unit_kind", "bank")
    orgs, units = table(Organization), table(Unit)
    with staging(
        s,
        "stage_units",
        Column("seq", BigInteger),
        Column("line", BigInteger),
        Column("id", BigInteger),
        *(Column(name, String) for name in columns[2:]),
    ) as staged:
        load(
            s,
            staged,
            columns,
            (
                (seq, g["line"], g["code"], g["name"], g["uscc"], g["unit_kind"], g["bank"])
                for seq, g in enumerate(good, start=1)
            ),
        )
        analyze(s, staged)
        code_taken = exists().where(orgs.c.code == staged.c.code)
        uscc_taken = exists().where(units.c.uscc == staged.c.uscc)
        clashes = s.execute(
            select(staged.c.line, staged.c.code, code_taken.label("code_taken"))
            .where(or_(code_taken, uscc_taken))
            .order_by(staged.c.line)
        ).all()
        for row in clashes:
            if row.code_taken:
                report.errors.append(LineError(row.line, "code", f"code '{row.code}' is taken"))
            else:
                report.errors.append(
                    LineError(row.line, "uscc", "a unit with this USCC is registered")
                )
        if report.errors and not skip_invalid:
            return report
        if clashes:
            s.execute(delete(staged).where(staged.c.line.in_([row.line for row in clashes])))
        now = rt.now()
        at = const(s, now, UTCDateTime())
        next_ids(s, staged, "id", orgs)
        s.execute(
            insert(orgs).from_select(
                ["id", "kind", "code", "name", "created_at"],
                select(
                    staged.c.id,
                    const(s, OrgKind.UNIT.value, String()),
                    staged.c.code,
                    staged.c.name,
                    at,
                ).order_by(staged.c.seq),
            )
        )
        s.execute(
            insert(units).from_select(
                ["org_id", "uscc", "unit_kind", "agreement_bank_code", "agreement_signed_at"],
                select(
                    staged.c.id,
                    staged.c.uscc,
                    staged.c.unit_kind,
                    staged.c.bank,
                    case((staged.c.bank.is_not(None), at), else_=const(s, None, UTCDateTime())),
                ).order_by(staged.c.seq),
            )
        )
        record_select(
            s,
            actor=actor,
            at=now,
            action="unit.registered",
            subject_type="organization",
            channel="import",
            rows=select(
                staged.c.id.label("subject_id"), const(s, None, BigInteger()).label("person_id")
            ),
            detail={"source": path.name},
        )
        report.written = s.scalar(select(func.count()).select_from(staged)) or 0
    uow.commit()
    return report
