"""HTTP benchmarks of the counters' calls with wrk, against ``sscard serve --workers N``.

The server runs on loopback against the generated region. A hospital and a bureau window
get a staff member each with a fresh bearer token (``hash_token``, as ``sscard staff
add`` stores it); a set of the region's active cards, whose holders have the generated
consumption password, is what the requests use. The tokens, card numbers and ID numbers
go into Lua scripts in a temporary folder, never into the repository.

Three paths: settlements (``POST /settlements`` by the hospital, a fresh Idempotency-Key
per request), card checks at the hospital (``POST /card-checks``) and Q-1 inquiries at
the window (``POST /medical-accounts/inquiries``). Each runs at a few connection counts,
bounded in time; wrk reports requests/s and its latency distribution. wrk is closed-loop:
the "half the best throughput" run paces each connection with wrk's ``delay()`` hook
(see ``paced_settlements``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.generate import BENCH_PIN
from sscard.access.tables import Staff
from sscard.accounts.tables import MedicalPassword
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.register.service import hash_token
from sscard.register.tables import Person
from sscard.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("settlements", "card_checks", "inquiries")


@dataclass(frozen=True)
class Counters:
    """Who calls, and with what cards."""

    hospital_token: str
    window_token: str
    cards: list[tuple[str, str]]  # (card number, ID number in clear)


def make_counters(rt: Runtime, *, hospital_id: int, window_id: int, cards: int) -> Counters:
    """A staff member (with a token) at the hospital and the window; ``cards`` usable cards."""
    hospital_token, window_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    now = rt.now()
    with rt.uow() as uow:
        s = uow.session
        for org_id, token in ((hospital_id, hospital_token), (window_id, window_token)):
            s.add(
                Staff(
                    org_id=org_id,
                    name="benchmark operator",
                    role="operator",
                    token_hash=hash_token(token),
                    active=True,
                    created_at=now,
                )
            )
        rows = s.execute(
            select(Card.card_number, Person)
            .join(Person, Person.id == Card.person_id)
            .join(MedicalPassword, MedicalPassword.person_id == Person.id)
            .where(Card.state == CardState.ACTIVE.value, MedicalPassword.locked_at.is_(None))
            .order_by(Card.id)
            .limit(cards)
        ).all()
        chosen = [(str(number), person.id_number) for number, person in rows]
        uow.commit()
    if len(chosen) < cards:
        raise RuntimeError(f"the region has {len(chosen)} usable cards, {cards} wanted")
    return Counters(hospital_token, window_token, chosen)


def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


LUA_COMMON = """
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(tid * 7919 + os.time())
  prefix = string.format("b%d-%d-", tid, os.time())
end
"""

LUA_DELAY = """
function delay()
  return %(delay_ms)d
end
"""


def write_scripts(folder: Path, counters: Counters, *, amount_fen: int = 1) -> dict[str, Path]:
    """The three Lua scripts (with the tokens and cards) in ``folder``."""
    numbers = _lua_list([c for c, _ in counters.cards])
    ids = _lua_list([i for _, i in counters.cards])
    settle = f"""
local cards = {numbers}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {counters.hospital_token}"
{LUA_COMMON}
function request()
  counter = counter + 1
  local card = cards[math.random(#cards)]
  local body = '{{"card_number":"' .. card .. '","kind":"outpatient","amount_fen":{amount_fen},'
    .. '"password":"{BENCH_PIN}"}}'
  wrk.headers["Idempotency-Key"] = prefix .. counter
  return wrk.format(nil, "/settlements", nil, body)
end
"""
    check = f"""
local cards = {numbers}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {counters.hospital_token}"
{LUA_COMMON}
function request()
  local card = cards[math.random(#cards)]
  return wrk.format(nil, "/card-checks", nil, '{{"card_number":"' .. card .. '"}}')
end
"""
    inquiry = f"""
local ids = {ids}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {counters.window_token}"
{LUA_COMMON}
function request()
  local id = ids[math.random(#ids)]
  return wrk.format(nil, "/medical-accounts/inquiries", nil, '{{"id_number":"' .. id .. '"}}')
end
"""
    scripts = {"settlements": settle, "card_checks": check, "inquiries": inquiry}
    paths = {}
    for name, text in scripts.items():
        path = folder / f"{name}.lua"
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths


def paced_script(folder: Path, settle: Path, *, delay_ms: int) -> Path:
    """The settlement script with each connection waiting ``delay_ms`` between requests."""
    path = folder / f"settlements_paced_{delay_ms}.lua"
    path.write_text(
        settle.read_text(encoding="utf-8") + LUA_DELAY % {"delay_ms": delay_ms}, encoding="utf-8"
    )
    return path


# ----------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The supervising process and every process under it (the workers)."""
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    todo += [int(c) for c in task.read_text().split()]
                except OSError:
                    continue
        return found


@contextmanager
def serving(url: str, *, workers: int, folder: Path) -> Iterator[Server]:
    """``sscard serve --workers N`` on a free loopback port; stopped on the way out."""
    port = free_port()
    log = folder / "server.log"
    sscard = str(Path(sys.executable).with_name("sscard"))
    command = [
        sscard,
        "serve",
        "--workers",
        str(workers),
        "--database",
        url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--sweep-interval",
        "0",
        "--delivery-interval",
        "0",
        "--no-access-log",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ
        )
    server = Server(process, port, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server stopped: {server.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), 1) as sock:
                sock.sendall(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    time.sleep(1)  # every worker up, not only the first
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"the server did not answer in {timeout} s: {server.log.read_text()[-2000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # uvicorn's supervisor stops its workers
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # our own session: the server and its workers
        process.wait(5)


# ----------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkRun:
    path: str
    connections: int
    seconds: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    delay_ms: int = 0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, requests/s, p50/p99, errors from ``wrk --latency``'s report."""
    found: dict[str, Any] = {}
    m = re.search(r"^\s*([0-9]+) requests in", output, re.M)
    found["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    found["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([0-9.]+(?:us|ms|s|m))", output, re.M)
        found[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", output)
    found["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    found["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return found


def find_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk not found: run scripts/ensure-bench-tools (make bench does)")
    return found


def run_wrk(
    server: Server, path: str, script: Path, *, connections: int, seconds: int, delay_ms: int = 0
) -> WrkRun:
    """One bounded wrk run; wrk's own report, parsed."""
    threads = max(1, min(2, connections))
    done = subprocess.run(
        [
            find_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            server.url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    return WrkRun(
        path=path,
        connections=connections,
        seconds=seconds,
        delay_ms=delay_ms,
        **parse_wrk(done.stdout),
    )


def paced_settlements(
    server: Server, folder: Path, settle: Path, *, best_rps: float, connections: int, seconds: int
) -> WrkRun:
    """Settlements at about half the best throughput: ``connections`` connections each
    waiting between requests so that together they send ``best_rps / 2``.

    wrk stays closed-loop (a slow answer delays the next request: coordinated omission),
    so the p99 is a lower bound of what an open-loop client would see; the achieved rate
    is reported beside it.
    """
    target = best_rps / 2
    per_connection_ms = connections / target * 1000 if target > 0 else 1000
    delay_ms = max(1, int(per_connection_ms))
    script = paced_script(folder, settle, delay_ms=delay_ms)
    return run_wrk(
        server,
        "settlements_paced",
        script,
        connections=connections,
        seconds=seconds,
        delay_ms=delay_ms,
    )


# ----------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    seconds: int
    samples_mb: list[float]
    processes: int
    load: dict[str, Any]

    @property
    def start_mb(self) -> float:
        return self.samples_mb[0]

    @property
    def max_mb(self) -> float:
        return max(self.samples_mb)

    @property
    def end_mb(self) -> float:
        return self.samples_mb[-1]

    @property
    def flat(self) -> bool:
        """The end is within 10 % of the second sample (after the first requests' warm-up)."""
        base = self.samples_mb[min(1, len(self.samples_mb) - 1)]
        return self.end_mb <= base * 1.10

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "processes": self.processes,
            "start_mb": self.start_mb,
            "max_mb": self.max_mb,
            "end_mb": self.end_mb,
            "flat": self.flat,
            "samples_mb": [round(s, 1) for s in self.samples_mb],
            "load": self.load,
        }


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def memory_under_load(
    server: Server, script: Path, *, seconds: int, connections: int = 8, every: float = 1.0
) -> Memory:
    """RSS of the server's processes, sampled while wrk sends settlements for ``seconds``."""
    pids = server.pids()
    samples = [rss_mb(pids)]
    threads = max(1, min(2, connections))
    wrk = subprocess.Popen(
        [
            find_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            server.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while wrk.poll() is None:
        time.sleep(every)
        samples.append(rss_mb(server.pids()))
    output = wrk.communicate()[0]
    samples.append(rss_mb(server.pids()))
    return Memory(seconds=seconds, samples_mb=samples, processes=len(pids), load=parse_wrk(output))


def as_dicts(runs: list[WrkRun]) -> list[dict[str, Any]]:
    return [asdict(r) for r in runs]
