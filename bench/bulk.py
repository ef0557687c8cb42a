"""Bulk benchmarks on the generated region, each beside the cheapest way to write its rows.

Each operation is called through its public function, timed commit included, and set
beside a reference timed on the same server a moment before: ``COPY`` of the rows the
operation wrote (read back from its main table) into a plain table of the same columns
(``CREATE TEMP TABLE ... (LIKE ...)``: no index, no constraint, no trigger), or, for the
sweep, one ``UPDATE`` of the same rows (rolled back). The ratio ``operation seconds ÷
reference seconds`` says how many times the minimal write the operation costs.

The operations chain on one unit of the region, as a real unit's year would:

1. register import: ``import_persons`` of a CSV of N persons of a new unit;
2. contribution file: ``import_contributions`` of that unit, N persons × months lines;
3. unit stage: ``issue_batch`` for the unit's persons, ``MAX_BATCH`` forms per call;
4. deadline sweep: ``sweep`` after M of the region's held cards were reported lost
   orally six days ago (L-1: the reports lapse).
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from faker import Faker
from sqlalchemy import select
from sqlalchemy.engine import make_url
from stdnum.cn import uscc

from bench.rows import MAX_CARDHOLDERS, citizen_id, region_codes
from sscard.access.model import Actor
from sscard.accounts.imports import import_contributions
from sscard.applications.batches import MAX_BATCH, Collector, issue_batch
from sscard.audit.sealer import seal
from sscard.jobs.sweeper import sweep
from sscard.register.importer import PERSON_COLUMNS, import_persons
from sscard.register.model import OrgKind
from sscard.register.tables import Organization, Unit
from sscard.runtime import Runtime

# ID numbers of the imported persons: a block of the generator's numbering no region
# seed reaches (seeds use blocks 0, 1, 2, ...), so they never meet a generated one.
IMPORT_BLOCK = 250


@dataclass(frozen=True)
class Versus:
    """One operation and its reference, in seconds, over ``rows`` rows."""

    name: str
    rows: int
    seconds: float
    reference: str
    reference_seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.reference_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seconds": self.seconds,
            "rows_per_s": self.rows_per_s,
            "reference": self.reference,
            "reference_seconds": self.reference_seconds,
            "reference_rows_per_s": self.rows / self.reference_seconds,
            "times_reference": self.ratio,
        }


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_reference(url: str, table: str, where: str) -> float:
    """Seconds to COPY the rows of ``table`` matching ``where`` into a plain table."""
    with psycopg.connect(_dsn(url)) as conn:
        buffer = io.BytesIO()
        with conn.cursor() as cur:
            query = f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT"  # noqa: S608 - our own names
            with cur.copy(query) as out:
                for data in out:
                    buffer.write(data)
            cur.execute(f"CREATE TEMP TABLE plain_{table} (LIKE {table})")
            conn.commit()
            start = time.perf_counter()
            with cur.copy(f"COPY plain_{table} FROM STDIN") as into:
                into.write(buffer.getvalue())
            conn.commit()
            return time.perf_counter() - start


def _actors(rt: Runtime, tag: str) -> tuple[Actor, Actor, str]:
    """A center operator, a service point supervisor, and a new unit's code."""
    now = rt.now()
    with rt.uow() as uow:
        s = uow.session
        point = Organization(
            kind=OrgKind.SERVICE_POINT.value, code=f"{tag}SP", name="bench point", created_at=now
        )
        unit = Organization(
            kind=OrgKind.UNIT.value, code=f"{tag}UNIT", name="bench unit", created_at=now
        )
        s.add_all([point, unit])
        s.flush()
        body = f"91441900{sum(map(ord, tag)) % 10**9:09d}"
        s.add(
            Unit(
                org_id=unit.id,
                uscc=body + uscc.calc_check_digit(body),
                unit_kind="ordinary",
                agreement_bank_code="ICBC",
                agreement_signed_at=now - timedelta(days=30),
            )
        )
        uow.commit()
        point_id, unit_code = point.id, unit.code
    center = Actor(
        staff_id=None, org_id=None, org_kind=OrgKind.CENTER, org_code="BENCH", name="benchmark"
    )
    supervisor = Actor(
        staff_id=None,
        org_id=point_id,
        org_kind=OrgKind.SERVICE_POINT,
        org_code=f"{tag}SP",
        name="benchmark supervisor",
        role="supervisor",
    )
    return center, supervisor, unit_code


def _id_numbers(n: int) -> list[str]:
    regions = region_codes()
    return [citizen_id(IMPORT_BLOCK * MAX_CARDHOLDERS + i, regions) for i in range(n)]


def bench_register(
    rt: Runtime, url: str, actor: Actor, unit_code: str, folder: Path, *, persons: int
) -> tuple[Versus, list[str]]:
    """``import_persons`` of ``persons`` employees of the unit vs COPY of their rows."""
    numbers = _id_numbers(persons)
    fake = Faker("zh_CN")
    fake.seed_instance(IMPORT_BLOCK)
    path = folder / "persons.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PERSON_COLUMNS)
        for i, number in enumerate(numbers):
            row = {
                "id_number": number,
                "name": fake.name(),
                "status": "employed",
                "phone": f"139{i:08d}",
                "unit_code": unit_code,
                "medical_scheme": "employee",
                "insured_since": "2020-01-01",
                "old_medical_card_no": "",
            }
            writer.writerow([row.get(c, "") for c in PERSON_COLUMNS])
    start = time.perf_counter()
    with rt.uow() as uow:
        report = import_persons(uow, rt, actor=actor, path=path)
    seconds = time.perf_counter() - start
    if not report.ok or report.written != persons:
        raise RuntimeError(f"import wrote {report.written} of {persons}: {report.errors[:3]}")
    with rt.uow() as uow:
        unit_id = uow.session.scalar(select(Organization.id).where(Organization.code == unit_code))
    reference = copy_reference(url, "persons", f"unit_org_id = {unit_id}")
    return Versus("register import", persons, seconds, "COPY persons rows", reference), numbers


def bench_contributions(
    rt: Runtime,
    url: str,
    actor: Actor,
    unit_code: str,
    numbers: list[str],
    folder: Path,
    *,
    lines: int,
) -> Versus:
    """``import_contributions`` of a ``lines``-line file (the unit's persons × months)."""
    months = math.ceil(lines / len(numbers))
    path = folder / "contributions.csv"
    first = date(2020, 1, 1)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("id_number", "month", "amount_fen"))
        for m in range(months):
            month = (
                f"{first.year + (first.month - 1 + m) // 12}-{(first.month - 1 + m) % 12 + 1:02d}"
            )
            for i, number in enumerate(numbers):
                if written == lines:
                    break
                writer.writerow((number, month, 30_000 + i % 1000))
                written += 1
    start = time.perf_counter()
    with rt.uow() as uow:
        report = import_contributions(uow, rt, actor=actor, unit_code=unit_code, path=path)
    seconds = time.perf_counter() - start
    if not report.ok or report.written != lines:
        raise RuntimeError(f"contributions: wrote {report.written} of {lines}: {report.errors[:3]}")
    with rt.uow() as uow:
        unit_id = uow.session.scalar(select(Organization.id).where(Organization.code == unit_code))
    reference = copy_reference(url, "contributions", f"unit_org_id = {unit_id}")
    return Versus("contribution file", lines, seconds, "COPY contributions rows", reference)


def bench_stage(
    rt: Runtime, url: str, actor: Actor, unit_code: str, *, applications: int
) -> Versus:
    """``issue_batch`` of a stage of ``applications`` forms (MAX_BATCH per call)."""
    collector = Collector(name="单位专管员", id_number=_id_numbers(1)[0])
    done, batch_ids = 0, []
    start = time.perf_counter()
    while done < applications:
        with rt.uow() as uow:
            batch, apps = issue_batch(
                uow,
                rt,
                actor=actor,
                unit_code=unit_code,
                stage="2026-Q4",
                collector=collector,
                limit=min(MAX_BATCH, applications - done),
            )
            uow.commit()
        done += len(apps)
        batch_ids.append(batch.id)
    seconds = time.perf_counter() - start
    ids = ", ".join(map(str, batch_ids))
    reference = copy_reference(url, "applications", f"batch_id IN ({ids})")
    return Versus("unit stage (issue_batch)", done, seconds, "COPY applications rows", reference)


DUE_SQL = """
WITH chosen AS (
  SELECT id FROM cards WHERE state IN ('active', 'received') ORDER BY id LIMIT %(n)s
)
UPDATE cards SET state_before_loss = state, state = 'lost_oral',
       loss_reported_at = %(reported)s, oral_loss_lapses_at = %(lapses)s, version = version + 1
FROM chosen WHERE cards.id = chosen.id
"""
LAPSE_SQL = """
UPDATE cards SET state = coalesce(state_before_loss, 'received'), state_before_loss = NULL,
       oral_loss_lapses_at = NULL, loss_reported_at = NULL, version = version + 1
WHERE state = 'lost_oral' AND oral_loss_lapses_at <= %(now)s
"""


def bench_sweep(rt: Runtime, url: str, *, cards: int, batch_size: int) -> Versus:
    """``sweep`` lapsing ``cards`` due oral reports vs one UPDATE of the same rows."""
    now = datetime.now(UTC)
    with psycopg.connect(_dsn(url)) as conn:
        made = conn.execute(
            DUE_SQL,
            {"n": cards, "reported": now - timedelta(days=6), "lapses": now - timedelta(days=1)},
        ).rowcount
        conn.commit()
        conn.execute("ANALYZE cards")
        conn.commit()
        start = time.perf_counter()
        updated = conn.execute(LAPSE_SQL, {"now": now}).rowcount
        reference = time.perf_counter() - start
        conn.rollback()
    if updated != made:
        raise RuntimeError(f"{made} reports made due, the UPDATE found {updated}")
    seal(rt)  # earlier audit records: the sweep seals only what it writes
    start = time.perf_counter()
    report = sweep(rt, batch_size=batch_size)
    seconds = time.perf_counter() - start
    lapsed = report.counts.get("oral_report_lapsed", 0)
    if lapsed != made:
        raise RuntimeError(f"the sweep lapsed {lapsed} of {made} reports: {report.counts}")
    return Versus("deadline sweep (L-1)", made, seconds, "one UPDATE (rolled back)", reference)


def run_bulk(
    rt: Runtime,
    url: str,
    *,
    persons: int,
    contribution_lines: int,
    stage: int,
    sweep_cards: int,
    sweep_batch: int,
    log: Any,
) -> dict[str, Versus]:
    """The four bulk benchmarks, in order, on the region at ``url``."""
    tag = f"B{int(time.time()) % 100_000}-"
    center, supervisor, unit_code = _actors(rt, tag)
    results: dict[str, Versus] = {}
    with tempfile.TemporaryDirectory(prefix="sscard-bench-bulk-") as tmp:
        folder = Path(tmp)
        log(f"bulk: register import of {persons:,} persons")
        results["register_import"], numbers = bench_register(
            rt, url, center, unit_code, folder, persons=persons
        )
        log(f"bulk: contribution file of {contribution_lines:,} lines")
        results["contribution_import"] = bench_contributions(
            rt, url, supervisor, unit_code, numbers, folder, lines=contribution_lines
        )
    log(f"bulk: unit stage of {min(stage, persons):,} applications")
    results["unit_stage"] = bench_stage(
        rt, url, supervisor, unit_code, applications=min(stage, persons)
    )
    log(f"bulk: sweep of {sweep_cards:,} due oral loss reports")
    results["sweep"] = bench_sweep(rt, url, cards=sweep_cards, batch_size=sweep_batch)
    return results
