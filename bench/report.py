"""The results of one run: ratios, a printed table and ``bench/results/latest.json``."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.cases import Latencies, Throughput
from bench.province import region_rows
from bench.reference import Latency


def machine_info(engine: Engine) -> dict[str, Any]:
    """What the numbers were measured on."""
    with engine.connect() as conn:
        server = conn.execute(text("SHOW server_version")).scalar_one()
        full = conn.execute(text("SELECT version()")).scalar_one()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": server,
        "postgresql_full": full,
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


@dataclass
class Results:
    command: str
    parameters: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)
    tps: list[float] = field(default_factory=list)  # pgbench before and after
    select1: list[Latency] = field(default_factory=list)  # PostgreSQL, before and after
    sqlite_select1: Latency | None = None
    import_: Throughput | None = None
    sweep: Throughput | None = None
    activation_pg: Latencies | None = None
    activation_sqlite: Latencies | None = None
    region: dict[str, Any] | None = None  # bench.province's section, unless --no-region
    elapsed_s: float = 0.0
    date: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def ref_tps(self) -> float:
        return statistics.fmean(self.tps)

    @property
    def ref_select1_ms(self) -> float:
        return statistics.fmean(s.mean_ms for s in self.select1)

    def as_dict(self) -> dict[str, Any]:
        assert self.import_ is not None
        assert self.sweep is not None
        assert self.activation_pg is not None
        assert self.activation_sqlite is not None
        assert self.sqlite_select1 is not None
        return {
            "schema": 1,
            "date": self.date,
            "command": self.command,
            "machine": self.machine,
            "parameters": self.parameters,
            "reference": {
                "pgbench_select_only_tps": {
                    "before": self.tps[0],
                    "after": self.tps[-1],
                    "mean": self.ref_tps,
                    "drift": _drift(self.tps),
                    "how": "pgbench -c 1 -j 1 -T <s> -S on a scratch database, -i -s 1",
                },
                "select1_ms": {
                    "before": _latency(self.select1[0]),
                    "after": _latency(self.select1[-1]),
                    "mean": self.ref_select1_ms,
                    "drift": _drift([s.mean_ms for s in self.select1]),
                    "how": "SELECT 1 on one held connection of sscard's engine, mean",
                },
                "sqlite_select1_ms": _latency(self.sqlite_select1),
            },
            "results": {
                "import_persons": self._throughput(self.import_),
                "sweep_oral_lapse": self._throughput(self.sweep),
                "activation_postgresql": self._latencies(self.activation_pg),
                "activation_sqlite": self._latencies(self.activation_sqlite)
                | {"p50_over_pg_p50": self.activation_sqlite.p50_ms / self.activation_pg.p50_ms},
            },
            "region": self.region,
            "elapsed_s": round(self.elapsed_s, 1),
        }

    def _throughput(self, t: Throughput) -> dict[str, Any]:
        return {
            "rows": t.rows,
            "seconds": t.seconds,
            "rows_per_s": t.rows_per_s,
            "ratio_to_pgbench_tps": t.rows_per_s / self.ref_tps,
        }

    def _latencies(self, lat: Latencies) -> dict[str, Any]:
        return {
            "n": len(lat.samples_ms),
            "p50_ms": lat.p50_ms,
            "p95_ms": lat.p95_ms,
            "mean_ms": lat.mean_ms,
            "p50_over_pg_select1": lat.p50_ms / self.ref_select1_ms,
            "p95_over_pg_select1": lat.p95_ms / self.ref_select1_ms,
            "p50_in_pgbench_transactions": lat.p50_ms / 1000 * self.ref_tps,
        }


def _latency(lat: Latency) -> dict[str, Any]:
    return {"mean": lat.mean_ms, "median": lat.median_ms, "rounds": lat.rounds}


def _drift(values: list[float]) -> float:
    """Relative change from the first to the last measurement (0.05 = +5 %)."""
    return values[-1] / values[0] - 1


def print_table(results: Results) -> None:
    data = results.as_dict()
    ref = data["reference"]
    res = data["results"]
    m = data["machine"]
    print(
        f"\nsscard benchmarks — {data['date']} — nproc {m['nproc']}, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, SQLite {m['sqlite']}"
    )
    tps = ref["pgbench_select_only_tps"]
    sel = ref["select1_ms"]
    print(
        f"reference: pgbench select-only {tps['mean']:,.0f} tps "
        f"(before {tps['before']:,.0f}, after {tps['after']:,.0f}, drift {tps['drift']:+.1%}); "
        f"SELECT 1 {sel['mean'] * 1000:.0f} µs (drift {sel['drift']:+.1%})\n"
    )
    rows = [("benchmark", "size", "result", "ratio", "ratio means")]
    imp, sw = res["import_persons"], res["sweep_oral_lapse"]
    p = data["parameters"]
    rows.append(
        (
            "(a) CSV import of persons",
            f"{imp['rows']:,} rows",
            f"{imp['rows_per_s']:,.0f} rows/s ({imp['seconds']:.1f} s)",
            f"{imp['ratio_to_pgbench_tps']:.3f}",
            "rows/s ÷ pgbench tps",
        )
    )
    rows.append(
        (
            "(b) sweep: oral reports lapse",
            f"{sw['rows']:,} cards / {p['sweep_batch']}",
            f"{sw['rows_per_s']:,.0f} rows/s ({sw['seconds']:.2f} s)",
            f"{sw['ratio_to_pgbench_tps']:.3f}",
            "rows/s ÷ pgbench tps",
        )
    )
    for label, key in (
        ("(c) activate, PostgreSQL", "activation_postgresql"),
        ("(d) activate, SQLite file", "activation_sqlite"),
    ):
        a = res[key]
        rows.append(
            (
                label,
                f"{a['n']} cards",
                f"p50 {a['p50_ms']:.2f} ms, p95 {a['p95_ms']:.2f} ms",
                f"{a['p50_over_pg_select1']:.1f}",
                "p50 ÷ PG SELECT 1",
            )
        )
    region = data.get("region")
    if region:
        rows += region_rows(region)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if region:
        n, s_ = region["pgbench"]["-N"], region["pgbench"]["-S"]
        print(
            f"\nregion reference: pgbench 16 clients -N {n['mean']:,.0f} tps "
            f"(drift {n['drift']:+.1%}), -S {s_['mean']:,.0f} tps (drift {s_['drift']:+.1%}); "
            f"HTTP errors: {region['http']['errors']}"
        )
    lite = res["activation_sqlite"]
    print(f"\nSQLite p50 ÷ PostgreSQL p50: {lite['p50_over_pg_p50']:.2f}")
    print(f"run took {data['elapsed_s']} s")
    print(f"reproduce: {data['command']}")


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(results.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
