"""The yardsticks every result is divided by, measured in the same run.

* pgbench's built-in select-only transaction (one primary-key ``SELECT`` per
  transaction, one client): what this PostgreSQL, on this machine, at this moment,
  does per second for the cheapest possible round trip through libpq.
* One ``SELECT 1`` through the project's own engine (SQLAlchemy + psycopg, the same
  pool and options the service uses), on a held connection: the cost of one round
  trip as the service pays it.
"""

from __future__ import annotations

import glob
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

TPS_LINE = re.compile(r"^tps = ([0-9]+(?:\.[0-9]+)?)(.*)$", re.MULTILINE)


def find_pgbench() -> str:
    """pgbench on PATH, else the newest one Debian's packages put in /usr/lib/postgresql."""
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    if not candidates:
        raise RuntimeError(
            "pgbench not found: install Debian's postgresql-client (or postgresql-contrib)"
        )
    return candidates[-1]


def _conn_args(url: URL) -> list[str]:
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    return args


def pgbench_init(pgbench: str, url: URL, *, scale: int = 1) -> None:
    """``pgbench -i -s scale`` into the (scratch) database of ``url``."""
    assert url.database
    subprocess.run(
        [pgbench, "-i", "-q", "-s", str(scale), *_conn_args(url), url.database],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


def parse_tps(output: str) -> float:
    """The ``tps = `` figure; on old pgbench, the one excluding connection set-up."""
    found = TPS_LINE.findall(output)
    if not found:
        raise RuntimeError(f"no 'tps = ' line in pgbench's output:\n{output}")
    for value, rest in found:
        if "without initial connection" in rest or "excluding" in rest:
            return float(value)
    return float(found[0][0])


def pgbench_select_only(pgbench: str, url: URL, *, seconds: int) -> float:
    """Transactions per second of ``pgbench -c 1 -j 1 -T seconds -S``."""
    assert url.database
    done = subprocess.run(
        [pgbench, "-c", "1", "-j", "1", "-T", str(seconds), "-S", *_conn_args(url), url.database],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    return parse_tps(done.stdout)


@dataclass(frozen=True)
class Latency:
    mean_ms: float
    median_ms: float
    rounds: int


def select_one_latency(engine: Engine, *, rounds: int, warmup: int = 50) -> Latency:
    """Mean and median time of ``SELECT 1`` on one held connection of ``engine``."""
    samples: list[float] = []
    with engine.connect() as conn:
        for _ in range(warmup):
            conn.execute(text("SELECT 1")).scalar_one()
        for _ in range(rounds):
            start = time.perf_counter()
            conn.execute(text("SELECT 1")).scalar_one()
            samples.append(time.perf_counter() - start)
        conn.rollback()
    return Latency(
        mean_ms=statistics.fmean(samples) * 1000,
        median_ms=statistics.median(samples) * 1000,
        rounds=rounds,
    )


def pgbench_tps(
    pgbench: str, url: URL, *, builtin: str, clients: int, threads: int, seconds: int
) -> float:
    """TPS of ``pgbench -c clients -j threads -T seconds`` with ``-N`` or ``-S``."""
    assert url.database
    assert builtin in ("-N", "-S")
    done = subprocess.run(
        [
            pgbench,
            "-c",
            str(clients),
            "-j",
            str(threads),
            "-T",
            str(seconds),
            builtin,
            *_conn_args(url),
            url.database,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    return parse_tps(done.stdout)
