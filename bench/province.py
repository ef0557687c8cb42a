"""The province-scale benchmarks (issue 9), in one run on one generated region.

1. generate the region (``bench.generate``) into a scratch database; bytes per cardholder;
2. references: ``pgbench -N`` and ``-S`` with 16 clients on a pgbench scratch database of
   the same server, before and after the HTTP benchmarks;
3. HTTP: ``sscard serve --workers N``, wrk on settlements, card checks and Q-1 inquiries
   at a few connection counts, settlements paced at half the best rate, and the server's
   memory under a longer load;
4. bulk: register import, contribution file, unit stage and sweep beside COPY/UPDATE.

Ratios: settlements/s ÷ pgbench -N TPS (target ≥ 0.30); card checks/s and inquiries/s
÷ pgbench -S TPS (target ≥ 0.10); bytes per cardholder (target ≤ 2,048).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from bench.bulk import run_bulk
from bench.generate import generate
from bench.http_load import (
    PATHS,
    WrkRun,
    make_counters,
    memory_under_load,
    paced_settlements,
    run_wrk,
    serving,
    write_scripts,
)
from bench.reference import pgbench_tps
from bench.size import footprint
from sscard.bootstrap import prepare

PGBENCH_CLIENTS = 16
PGBENCH_THREADS = 2
TARGETS = {"settlements": 0.30, "card_checks": 0.10, "inquiries": 0.10}
REFERENCE_OF = {"settlements": "-N", "card_checks": "-S", "inquiries": "-S"}


def _pgbench_pair(pgbench: str, url: URL, seconds: int) -> dict[str, float]:
    return {
        mode: pgbench_tps(
            pgbench,
            url,
            builtin=mode,
            clients=PGBENCH_CLIENTS,
            threads=PGBENCH_THREADS,
            seconds=seconds,
        )
        for mode in ("-N", "-S")
    }


def run_region(
    args: Any, region_url: URL, pgbench: str, pgbench_url: URL, log: Callable[[str], None]
) -> dict[str, Any]:
    """Every province-scale benchmark; the JSON section ``region``."""
    url = region_url.render_as_string(hide_password=False)
    out: dict[str, Any] = {}
    log(f"region: generating {args.cardholders:,} cardholders (COPY, {args.workers} workers)")
    region = generate(url, cardholders=args.cardholders, workers=args.workers, show_progress=True)
    out["generate"] = {
        "cardholders": region.cardholders,
        "seconds": region.seconds,
        "cardholders_per_s": region.cardholders / region.seconds,
        "cards_by_state": dict(region.states),
    }
    log("region: bytes per cardholder")
    out["footprint"] = footprint(url).as_dict()

    log(f"reference: pgbench -N and -S, {PGBENCH_CLIENTS} clients, {args.pgbench_seconds} s each")
    before = _pgbench_pair(pgbench, pgbench_url, args.pgbench_seconds)

    svc = prepare(url, migrate=False)
    try:
        counters = make_counters(
            svc.runtime,
            hospital_id=region.hospital_id,
            window_id=region.window_id,
            cards=args.http_cards,
        )
    finally:
        svc.engine.dispose()
    runs: list[WrkRun] = []
    with tempfile.TemporaryDirectory(prefix="sscard-bench-http-") as tmp:
        folder = Path(tmp)
        scripts = write_scripts(folder, counters)
        log(f"http: sscard serve --workers {args.server_workers}")
        with serving(url, workers=args.server_workers, folder=folder) as server:
            for path in PATHS:
                run_wrk(server, path, scripts[path], connections=4, seconds=2)  # warm-up
                for c in args.concurrency:
                    log(f"http: {path}, {c} connections, {args.http_seconds} s")
                    runs.append(
                        run_wrk(
                            server, path, scripts[path], connections=c, seconds=args.http_seconds
                        )
                    )
            best = max(r.rps for r in runs if r.path == "settlements")
            log(f"http: settlements paced at half the best rate ({best / 2:,.0f}/s)")
            paced = paced_settlements(
                server,
                folder,
                scripts["settlements"],
                best_rps=best,
                connections=8,
                seconds=args.http_seconds,
            )
            log(f"http: server memory under {args.memory_seconds} s of settlements")
            memory = memory_under_load(server, scripts["settlements"], seconds=args.memory_seconds)
    log("reference: pgbench -N and -S (after)")
    after = _pgbench_pair(pgbench, pgbench_url, args.pgbench_seconds)
    reference: dict[str, dict[str, Any]] = {
        mode: {
            "before": before[mode],
            "after": after[mode],
            "mean": statistics.fmean((before[mode], after[mode])),
            "drift": after[mode] / before[mode] - 1,
            "how": f"pgbench -c {PGBENCH_CLIENTS} -j {PGBENCH_THREADS} -T <s> {mode}",
        }
        for mode in ("-N", "-S")
    }
    out["pgbench"] = reference
    http: dict[str, Any] = {"runs": [asdict(r) for r in runs], "paced_settlements": asdict(paced)}
    for path in PATHS:
        best_run = max((r for r in runs if r.path == path), key=lambda r: r.rps)
        ref = reference[REFERENCE_OF[path]]["mean"]
        http[path] = {
            "best_rps": best_run.rps,
            "at_connections": best_run.connections,
            "p50_ms": best_run.p50_ms,
            "p99_ms": best_run.p99_ms,
            "reference": f"pgbench {REFERENCE_OF[path]}",
            "ratio": best_run.rps / ref,
            "target": TARGETS[path],
            "meets_target": best_run.rps / ref >= TARGETS[path],
        }
    errors = sum(r.non_2xx + r.socket_errors for r in [*runs, paced])
    http["errors"] = errors
    out["http"] = http
    out["memory"] = memory.as_dict()

    svc = prepare(url, migrate=False)
    try:
        bulk = run_bulk(
            svc.runtime,
            url,
            persons=args.bulk_persons,
            contribution_lines=args.contribution_lines,
            stage=args.stage,
            sweep_cards=args.sweep_due,
            sweep_batch=args.sweep_batch,
            log=log,
        )
    finally:
        svc.engine.dispose()
    out["bulk"] = {name: v.as_dict() for name, v in bulk.items()}
    return out


def region_rows(region: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The region's lines of the printed table."""
    rows: list[tuple[str, str, str, str, str]] = []
    g = region["generate"]
    rows.append(
        (
            "region generation (COPY)",
            f"{g['cardholders']:,} cardholders",
            f"{g['cardholders_per_s']:,.0f}/s ({g['seconds']:.0f} s)",
            "",
            "",
        )
    )
    f = region["footprint"]
    top = ", ".join(f"{k} {v['per_cardholder']:.0f}" for k, v in list(f["tables"].items())[:4])
    rows.append(
        (
            "bytes per cardholder",
            f"{f['cardholders']:,} persons",
            f"{f['bytes_per_cardholder']:,.0f} B ({top})",
            f"{f['bytes_per_cardholder'] / 2048:.2f}",
            "÷ 2 KB (target ≤ 1)",
        )
    )
    http = region["http"]
    for run in http["runs"]:
        rows.append(
            (
                f"http {run['path']}",
                f"{run['connections']} conn",
                f"{run['rps']:,.0f}/s, p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms",
                "",
                "",
            )
        )
    for path in PATHS:
        h = http[path]
        rows.append(
            (
                f"http {path}: best",
                f"{h['at_connections']} conn",
                f"{h['best_rps']:,.0f}/s",
                f"{h['ratio']:.3f}",
                f"÷ {h['reference']} tps (target ≥ {h['target']:.2f})",
            )
        )
    p = http["paced_settlements"]
    rows.append(
        (
            "http settlements, half rate",
            f"{p['connections']} conn, {p['delay_ms']} ms gap",
            f"{p['rps']:,.0f}/s, p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms",
            "",
            "wrk delay(): closed loop",
        )
    )
    m = region["memory"]
    rows.append(
        (
            "server RSS under load",
            f"{m['seconds']} s, {m['processes']} procs",
            f"start {m['start_mb']:.0f} MB, max {m['max_mb']:.0f}, end {m['end_mb']:.0f}",
            "flat" if m["flat"] else "GROWS",
            "end ≤ 1.1 × start",
        )
    )
    for name, b in region["bulk"].items():
        rows.append(
            (
                f"bulk {name}",
                f"{b['rows']:,} rows",
                f"{b['rows_per_s']:,.0f} rows/s ({b['seconds']:.1f} s)",
                f"{b['times_reference']:.1f}",
                f"× {b['reference']}",
            )
        )
    return rows
