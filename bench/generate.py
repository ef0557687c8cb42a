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
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.engine import make_url
from stdnum.cn import uscc

from bench.rows import (
    BENCH_PIN,
    COLUMNS,
    ID_TABLES,
    MAX_CARDHOLDERS,
    ORDER,
    Chunk,
    Plan,
    build_chunk,
    region_codes,
)
from sscard.accounts.model import AccountKind
from sscard.accounts.tables import LedgerAccount
from sscard.bootstrap import prepare
from sscard.register.model import OrgKind
from sscard.register.tables import Organization, Unit
from sscard.runtime import Runtime

__all__ = ["BENCH_PIN", "DEFAULT_CARDHOLDERS", "MAX_CARDHOLDERS", "Region", "generate"]

DEFAULT_CARDHOLDERS = 1_000_000
CHUNK = 5_000
PER_UNIT = 60  # employees per unit, on average
PER_OUTLET = 20_000  # cardholders per bank outlet
AHEAD = 2  # chunks built ahead per worker process (bounds the memory they hold)

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
            body = f"91{_uscc_body(k, tag)}"
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


def _uscc_body(k: int, tag: str) -> str:
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
            # Vacuumed now (visibility map, statistics), so that autovacuum does not
            # start on a million fresh rows while a benchmark runs.
            conn.execute(f"VACUUM (ANALYZE) {table}")
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
        todo = _chunks(cardholders)
        pending: list[Future[Chunk]] = []
        for start, count in todo:
            pending.append(pool.submit(build_chunk, plan, start, count))
            if len(pending) >= workers * AHEAD:
                yield pending.pop(0).result()
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
