"""The benchmarks themselves: each sets up its data untimed, then times one use case."""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from bench.seed import Cohort, Outlet, bulk_cards, write_person_csv
from sscard.access.model import Actor
from sscard.audit.sealer import seal
from sscard.cards.model import CardState
from sscard.cards.service import activate
from sscard.cards.tables import Card
from sscard.jobs.sweeper import sweep
from sscard.register.importer import import_persons
from sscard.register.model import OrgKind
from sscard.runtime import Runtime

# Who imports: the card management center, as the CLI's operator does.
CENTER = Actor(
    staff_id=None, org_id=None, org_kind=OrgKind.CENTER, org_code="BENCH", name="benchmark"
)
WARMUP_ACTIVATIONS = 10


@dataclass(frozen=True)
class Throughput:
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


@dataclass(frozen=True)
class Latencies:
    samples_ms: list[float]

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (the sample at or above ``pct`` percent of the others)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def bench_import(rt: Runtime, *, persons: int) -> Throughput:
    """(a) ``import_persons`` of a valid CSV of ``persons`` lines, commit included."""
    with tempfile.TemporaryDirectory(prefix="sscard-bench-") as tmp:
        path = Path(tmp) / "persons.csv"
        write_person_csv(path, persons)
        start = time.perf_counter()
        with rt.uow() as uow:
            report = import_persons(uow, rt, actor=CENTER, path=path)
        seconds = time.perf_counter() - start
    if not report.ok or report.written != persons:
        first = report.errors[:3]
        raise RuntimeError(f"import wrote {report.written} of {persons}; first errors: {first}")
    return Throughput(rows=persons, seconds=seconds)


def bench_sweep(rt: Runtime, outlet: Outlet, *, cards: int, batch_size: int) -> Throughput:
    """(b) ``sweep`` lapsing ``cards`` due oral loss reports in batches of ``batch_size``."""
    bulk_cards(rt, outlet=outlet, cohort=Cohort.SWEEP, n=cards, state=CardState.LOST_ORAL)
    seal(rt)  # the earlier cases' audit records: the sweep seals only what it writes
    start = time.perf_counter()
    report = sweep(rt, batch_size=batch_size)
    seconds = time.perf_counter() - start
    lapsed = report.counts.get("oral_report_lapsed", 0)
    sealed = report.counts.get("audit_sealed", 0)
    # Besides the lapses, the sweep only seals its records and adds the audit trail's months.
    upkeep = sealed + report.counts.get("audit_partitions_added", 0)
    if lapsed != cards or report.total != cards + upkeep:
        raise RuntimeError(f"the sweep lapsed {lapsed} of {cards} reports: {report.counts}")
    with rt.uow() as uow:
        left = uow.session.scalar(
            select(func.count()).select_from(Card).where(Card.state == CardState.LOST_ORAL.value)
        )
    if left:
        raise RuntimeError(f"{left} oral loss reports are still open after the sweep")
    return Throughput(rows=cards, seconds=seconds)


def bench_activation(rt: Runtime, outlet: Outlet, *, activations: int) -> Latencies:
    """(c, d) ``activate`` at the outlet, one card per unit of work, each timed alone.

    The first few activations warm SQLAlchemy's statement caches and are not counted.
    """
    ids = bulk_cards(
        rt,
        outlet=outlet,
        cohort=Cohort.ACTIVATION,
        n=activations + WARMUP_ACTIVATIONS,
        state=CardState.RECEIVED,
    )
    samples: list[float] = []
    for i, card_id in enumerate(ids):
        start = time.perf_counter()
        with rt.uow() as uow:
            moved = activate(uow, rt, actor=outlet.actor, card_id=card_id, channel="outlet")
        elapsed = time.perf_counter() - start
        if moved.card.state != CardState.ACTIVE:
            raise RuntimeError(f"card {card_id} is {moved.card.state} after activation")
        if i >= WARMUP_ACTIVATIONS:
            samples.append(elapsed * 1000)
    return Latencies(samples_ms=samples)
