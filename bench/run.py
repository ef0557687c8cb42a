"""``python -m bench.run``: sscard's benchmarks, each as a ratio to a same-run reference.

The machine is small and noisy (2 shared cores), so absolute numbers move from run to
run. Every result is therefore divided by a yardstick measured in the same run on the
same PostgreSQL: pgbench's select-only TPS (measured before and after the benchmarks)
and the latency of one ``SELECT 1`` through the project's engine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from bench.cases import bench_activation, bench_import, bench_sweep
from bench.province import run_region
from bench.reference import (
    find_pgbench,
    pgbench_init,
    pgbench_select_only,
    select_one_latency,
)
from bench.report import Results, machine_info, print_table, write_json
from bench.rows import MAX_CARDHOLDERS
from bench.seed import MAX_ROWS, make_outlet
from sscard.bootstrap import Service, prepare
from sscard.core.clock import FixedClock
from sscard.db.engine import make_engine

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# A Monday in a year the statutory calendar knows (as in the tests).
START = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"
PGBENCH_SCALE = 1  # as the earlier runs: 100,000 pgbench_accounts rows


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        n = int(value)
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return n

    return parse


# Sizes: the (the default) and a quick run's (--quick). An explicit option wins.
FULL: dict[str, Any] = {
    "persons": 20000,
    "sweep": 5000,
    "activations": 200,
    "pgbench_seconds": 10,
    "select1_rounds": 5000,
    "cardholders": 1_000_000,
    "http_seconds": 10,
    "memory_seconds": 60,
    "bulk_persons": 100_000,
    "contribution_lines": 1_000_000,
    "stage": 100_000,
    "sweep_due": 1_000_000,
}
QUICK: dict[str, Any] = FULL | {
    "persons": 2000,
    "sweep": 1000,
    "activations": 100,
    "pgbench_seconds": 5,
    "select1_rounds": 2000,
    "cardholders": 20_000,
    "http_seconds": 5,
    "memory_seconds": 15,
    "bulk_persons": 5000,
    "contribution_lines": 20_000,
    "stage": 5000,
    "sweep_due": 10_000,
}


def _concurrency(value: str) -> list[int]:
    counts = [int(v) for v in value.split(",") if v.strip()]
    if not counts or any(not 1 <= c <= 1024 for c in counts):
        raise argparse.ArgumentTypeError("comma-separated connection counts, 1 to 1024")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes in all)")
    p.add_argument("--persons", type=_count(1, MAX_ROWS), help="(a) CSV lines")
    p.add_argument("--sweep", type=_count(1, MAX_ROWS), help="(b) due reports")
    p.add_argument("--sweep-batch", type=_count(1, 100_000), default=1000, help="sweeps' batch")
    p.add_argument("--activations", type=_count(2, 100_000), help="(c, d) timed activations")
    p.add_argument("--pgbench-seconds", type=_count(1, 600), help="each pgbench run")
    p.add_argument("--select1-rounds", type=_count(10, 1_000_000), help="SELECT 1 samples")
    p.add_argument("--no-region", action="store_true", help="only (a)-(d), no province run")
    p.add_argument("--cardholders", type=_count(1, MAX_CARDHOLDERS), help="region size")
    p.add_argument("--workers", type=_count(1, 64), default=2, help="generator processes")
    p.add_argument("--server-workers", type=_count(1, 64), default=2, help="sscard serve")
    p.add_argument("--http-seconds", type=_count(1, 600), help="each wrk run")
    p.add_argument(
        "--concurrency", type=_concurrency, default=[1, 8, 32], help="wrk connections, e.g. 1,8,32"
    )
    p.add_argument("--http-cards", type=_count(1, 1_000_000), default=1000, help="cards used")
    p.add_argument("--memory-seconds", type=_count(1, 3600), help="load while RSS is sampled")
    p.add_argument("--bulk-persons", type=_count(1, MAX_ROWS), help="register import rows")
    p.add_argument("--contribution-lines", type=_count(1, 10 * MAX_ROWS), help="file lines")
    p.add_argument("--stage", type=_count(1, MAX_ROWS), help="applications of the unit stage")
    p.add_argument("--sweep-due", type=_count(1, MAX_CARDHOLDERS), help="due oral reports")
    p.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL database to connect to")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON result file")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line that repeats this run (every size explicit)."""
    words = [".venv/bin/python", "-m", "bench.run"]
    words += [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in FULL]
    words += [
        f"--sweep-batch={args.sweep_batch}",
        f"--workers={args.workers}",
        f"--server-workers={args.server_workers}",
        f"--concurrency={','.join(map(str, args.concurrency))}",
        f"--http-cards={args.http_cards}",
    ]
    if args.no_region:
        words.append("--no-region")
    if args.admin_url != ADMIN_URL:
        words.append(f"--admin-url={args.admin_url}")
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join(words)}"


class Log:
    """Progress on stderr, with the seconds since the start."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


class Unreachable(Exception):
    """The PostgreSQL server does not answer."""


@contextmanager
def scratch_databases(admin_url: URL, names: Sequence[str], log: Log) -> Iterator[None]:
    """Create the databases ``names``; drop them afterwards, also after a failure."""
    admin = make_engine(
        admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    created: list[str] = []
    try:
        try:
            conn = admin.connect()
        except OperationalError as exc:
            raise Unreachable(f"PostgreSQL is not reachable at {admin_url}: {exc.orig}") from None
        with conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        log(f"created scratch databases {', '.join(created)}")
        yield
    finally:
        for name in created:
            try:
                with admin.connect() as conn:
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :n AND pid <> pg_backend_pid()"
                        ),
                        {"n": name},
                    )
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                log(f"dropped {name}")
            except DBAPIError as exc:
                print(f"could not drop scratch database {name}: {exc.orig}", file=sys.stderr)
        admin.dispose()


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the scratch databases are dropped on the way out.
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace, log: Log) -> Results:
    admin_url = make_url(args.admin_url)
    name = f"sscard_bench_{secrets.token_hex(4)}"
    bench_url = admin_url.set(database=name)
    pgbench_url = admin_url.set(database=f"{name}_pgbench")
    region_url = admin_url.set(database=f"{name}_region")
    pgbench = find_pgbench()
    results = Results(
        command=reproduce_command(args),
        parameters=vars(args) | {"output": None, "admin_url": admin_url.render_as_string()},
    )
    names = [name, f"{name}_pgbench"] + ([] if args.no_region else [f"{name}_region"])
    with scratch_databases(admin_url, names, log):
        log(f"pgbench -i -s {PGBENCH_SCALE} ({pgbench})")
        pgbench_init(pgbench, pgbench_url, scale=PGBENCH_SCALE)
        log(f"reference: pgbench -c 1 -j 1 -T {args.pgbench_seconds} -S (before)")
        results.tps.append(pgbench_select_only(pgbench, pgbench_url, seconds=args.pgbench_seconds))

        log(f"migrating {name}")
        svc = prepare(bench_url.render_as_string(hide_password=False), clock=FixedClock(START))
        try:
            results.machine = machine_info(svc.engine)
            _postgres_cases(svc, args, results, log)
        finally:
            svc.engine.dispose()

        log(f"reference: pgbench -c 1 -j 1 -T {args.pgbench_seconds} -S (after)")
        results.tps.append(pgbench_select_only(pgbench, pgbench_url, seconds=args.pgbench_seconds))
        if not args.no_region:
            results.region = run_region(args, region_url, pgbench, pgbench_url, log)

    with tempfile.TemporaryDirectory(prefix="sscard-bench-") as tmp:
        log("(d) SQLite: migrating a temporary file")
        lite = prepare(f"sqlite:///{Path(tmp) / 'bench.db'}", clock=FixedClock(START))
        try:
            results.sqlite_select1 = select_one_latency(lite.engine, rounds=args.select1_rounds)
            log(f"(d) SQLite: {args.activations} activations")
            outlet = make_outlet(lite.runtime)
            results.activation_sqlite = bench_activation(
                lite.runtime, outlet, activations=args.activations
            )
        finally:
            lite.engine.dispose()
    return results


def _postgres_cases(svc: Service, args: argparse.Namespace, results: Results, log: Log) -> None:
    rt = svc.runtime
    log("reference: SELECT 1 through the project's engine (before)")
    results.select1.append(select_one_latency(svc.engine, rounds=args.select1_rounds))
    outlet = make_outlet(rt)
    log(f"(a) importing {args.persons} persons from CSV")
    results.import_ = bench_import(rt, persons=args.persons)
    log(f"(b) sweeping {args.sweep} due oral loss reports, batches of {args.sweep_batch}")
    results.sweep = bench_sweep(rt, outlet, cards=args.sweep, batch_size=args.sweep_batch)
    log(f"(c) {args.activations} activations on PostgreSQL")
    results.activation_pg = bench_activation(rt, outlet, activations=args.activations)
    log("reference: SELECT 1 through the project's engine (after)")
    results.select1.append(select_one_latency(svc.engine, rounds=args.select1_rounds))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # The scratch databases get throwaway keys of their own (passwords, data at rest,
    # audit chain), made in a temporary folder and gone with it: never a real key.
    keys = tempfile.TemporaryDirectory(prefix="sscard-bench-keys-")
    os.environ["SSCARD_KEY_DIR"] = keys.name
    os.environ["SSCARD_CREATE_KEYS"] = "1"
    log = Log()
    try:
        results = run(args, log)
    except Unreachable as exc:
        print(f"{exc} (make bench starts the local server)", file=sys.stderr)
        return 2
    results.elapsed_s = time.perf_counter() - log.start
    print_table(results)
    write_json(results, args.output)
    print(f"written {args.output.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
