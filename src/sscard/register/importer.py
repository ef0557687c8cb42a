"""CSV imports of persons and units: set-based, all-or-nothing, with a line-by-line report.

A file is checked completely first (every line, against the database in chunks of a
few thousand rows, one query per chunk); if any line is bad nothing is written and
the report names each bad line. ``skip_invalid`` writes the good lines instead.
Everything that is written is written in one transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, require
from sscard.applications.model import choose_bank
from sscard.audit.service import record_many
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.ids import parse_uscc
from sscard.core.policy import UnitKind
from sscard.core.protect import ID_NUMBER, SOCIAL
from sscard.db.engine import UnitOfWork
from sscard.db.types import blinds_of
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
    reader = csv.DictReader(handle)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in columns[:2] if c not in header]
    unknown = [h for h in header if h not in columns]
    if missing or unknown:
        raise InvalidInput(
            f"the header must name columns from: {', '.join(columns)} "
            f"(missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'})",
            field="header",
        )
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


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


def _check_persons(
    s: Session,
    rt: Runtime,
    chunk: list[tuple[int, dict[str, str]]],
    seen: set[Hashable],
    report: ImportReport,
) -> list[dict[str, Any]]:
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

    good = [
        (g["line"], g["values"], g["unit_code"])
        for g in check_lines(
            chunk,
            report,
            parse,
            keys=lambda g: [g["values"]["id_number"]],
            seen=seen,
            repeated=("id_number", "this ID number appears earlier in the file"),
        )
    ]
    # One HMAC per line, one query per chunk: the blind index, never the sealed column.
    hashes = blinds_of(SOCIAL, ID_NUMBER, [v["id_number"] for _, v, _ in good])
    existing = {
        hashes[h]
        for h in s.scalars(
            select(Person.id_number_hash).where(Person.id_number_hash.in_(list(hashes)))
        )
    }
    current: dict[str, str] = {}  # the newest version's hash comes first: written as is
    for h, number in hashes.items():
        current.setdefault(number, h)
    codes = {c for _, _, c in good if c}
    units = dict(
        s.execute(
            select(Organization.code, Organization.id).where(
                Organization.code.in_(codes), Organization.kind == OrgKind.UNIT
            )
        ).all()
    )
    rows = []
    for line, values, code in good:
        if values["id_number"] in existing:
            report.errors.append(
                LineError(line, "id_number", "a person with this ID number is registered")
            )
        elif code and code not in units:
            report.errors.append(LineError(line, "unit_code", f"no unit with code '{code}'"))
        else:
            rows.append(
                values
                | {
                    "id_number_hash": current[values["id_number"]],
                    "unit_org_id": units.get(code) if code else None,
                    "_line": line,
                }
            )
    return rows


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
    valid: list[list[dict[str, Any]]] = []
    for chunk in read_chunks(path, PERSON_COLUMNS, report, progress):
        valid.append(_check_persons(s, rt, chunk, seen, report))
    if report.errors and not skip_invalid:
        return report
    now = rt.now()
    for rows in valid:
        if not rows:
            continue
        for r in rows:
            r.pop("_line")
        ids = (
            s.execute(
                insert(Person).returning(Person.id, sort_by_parameter_order=True),
                [r | {"created_at": now, "updated_at": now, "version": 1} for r in rows],
            )
            .scalars()
            .all()
        )
        record_many(
            s,
            actor=actor,
            at=now,
            action="person.registered",
            subject_type="person",
            channel="import",
            entries=((pid, pid, {"source": path.name}) for pid in ids),
        )
        report.written += len(ids)
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
    valid: list[dict[str, Any]] = []
    for chunk in read_chunks(path, UNIT_COLUMNS, report, progress):
        good = check_lines(
            chunk,
            report,
            lambda raw: _parse_unit(rt, raw),
            keys=lambda g: [("code", g["code"]), ("uscc", g["uscc"])],
            seen=seen,
            repeated=("code", "code or USCC appears earlier in the file"),
            columns={"bank_code": "agreement_bank_code"},
        )
        taken_codes = set(
            s.scalars(
                select(Organization.code).where(Organization.code.in_([g["code"] for g in good]))
            )
        )
        taken_uscc = set(
            s.scalars(select(Unit.uscc).where(Unit.uscc.in_([g["uscc"] for g in good])))
        )
        for g in good:
            if g["code"] in taken_codes:
                report.errors.append(LineError(g["line"], "code", f"code '{g['code']}' is taken"))
            elif g["uscc"] in taken_uscc:
                report.errors.append(
                    LineError(g["line"], "uscc", "a unit with this USCC is registered")
                )
            else:
                valid.append(g)
    if report.errors and not skip_invalid:
        return report
    now = rt.now()
    for rows in chunks(valid, CHUNK):
        org_ids = (
            s.execute(
                insert(Organization).returning(Organization.id, sort_by_parameter_order=True),
                [
                    {
                        "kind": OrgKind.UNIT.value,
                        "code": r["code"],
                        "name": r["name"],
                        "created_at": now,
                    }
                    for r in rows
                ],
            )
            .scalars()
            .all()
        )
        s.execute(
            insert(Unit),
            [
                {
                    "org_id": oid,
                    "uscc": r["uscc"],
                    "unit_kind": r["unit_kind"],
                    "agreement_bank_code": r["bank"],
                    "agreement_signed_at": now if r["bank"] else None,
                }
                for oid, r in zip(org_ids, rows, strict=True)
            ],
        )
        record_many(
            s,
            actor=actor,
            at=now,
            action="unit.registered",
            subject_type="organization",
            channel="import",
            entries=((oid, None, {"source": path.name}) for oid in org_ids),
        )
        report.written += len(org_ids)
    uow.commit()
    return report
