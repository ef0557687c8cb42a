"""Test fixtures: real SQLite and real PostgreSQL, each test in a rolled-back transaction.

PostgreSQL is required: if it cannot be reached the tests fail with the reason (they
never skip). ``SSCARD_TEST_PG_URL`` points at a server where a scratch database may be
created (default: the local trust-auth server).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sscard.audit.chain import GENESIS
from sscard.core.clock import FixedClock
from sscard.core.policy import load_policy
from sscard.db.engine import UnitOfWork, make_engine, reads_of, session_factory
from sscard.db.migrate import upgrade
from sscard.db.models import Base
from sscard.region.service import install_policy
from sscard.runtime import Runtime
from sscard.wiring import wire
from tests.factories import World

wire()  # every message handler listens, as in the server and the CLI

# Fixed, distinct key material per side for the tests (never used outside them).
os.environ.setdefault("SSCARD_SOCIAL_KEY", "5a" * 32)
os.environ.setdefault("SSCARD_BANK_KEY", "b4" * 32)
os.environ.setdefault("SSCARD_REQUESTS_KEY", "c3" * 32)
os.environ.setdefault("SSCARD_AUDIT_KEY", "a7" * 32)
# Personal data at rest: each side's data (AES-256) and blind index keys.
os.environ.setdefault("SSCARD_DATA_KEY", "d1" * 32)
os.environ.setdefault("SSCARD_INDEX_KEY", "e1" * 32)
os.environ.setdefault("SSCARD_BANK_DATA_KEY", "d2" * 32)
os.environ.setdefault("SSCARD_BANK_INDEX_KEY", "e2" * 32)
os.environ.setdefault("SSCARD_AUTH_KEY", "a8" * 32)

PG_ADMIN_URL = os.environ.get(
    "SSCARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday in a year the statutory calendar knows.
START = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)


def _pg_admin() -> Engine:
    return make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _drop_orphans(conn: Connection) -> None:
    """Drop scratch databases of earlier runs whose process is gone (killed runs)."""
    names = conn.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE 'sscard_test_%'")
    ).scalars()
    for orphan in list(names):
        pid = orphan.split("_")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{orphan}"'))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test run, migrated, dropped afterwards."""
    name = f"sscard_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            _drop_orphans(conn)
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required for the tests but cannot be reached at {PG_ADMIN_URL}: "
            f"{exc.orig}. Start it (make test does) or set SSCARD_TEST_PG_URL.",
            pytrace=False,
        )
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "sscard.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each database test runs on both backends."""
    fixture = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    result: Engine = request.getfixturevalue(fixture)
    return result


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def committed_rt(pg_engine: Engine) -> Iterator[Runtime]:
    """A runtime on PostgreSQL whose units of work really commit, reads outside any
    transaction as in the server; every table is emptied afterwards."""
    factory = session_factory(pg_engine)
    clock = FixedClock(START)
    with UnitOfWork(factory) as uow:
        install_policy(uow.session, "dongguan", now=clock.now())
        uow.commit()
    yield Runtime(
        clock=clock,
        policy=load_policy("dongguan"),
        session_factory=factory,
        read_session_factory=session_factory(reads_of(pg_engine)),
    )
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, :g)"),
            {"g": GENESIS},
        )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def policy_name() -> str:
    return "dongguan"


@pytest.fixture
def rt(connection: Connection, clock: FixedClock, policy_name: str) -> Runtime:
    """A runtime whose every unit of work is a savepoint in the test's transaction."""
    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    with factory() as session:
        install_policy(session, policy_name, now=clock.now())
        session.commit()
    return Runtime(clock=clock, policy=load_policy(policy_name), session_factory=factory)


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


@pytest.fixture
def session(rt: Runtime) -> Iterator[Session]:
    with rt.uow() as uow:
        yield uow.session


# ---------------------------------------------------------------- log privacy guard
# Every log record of the whole run is scanned: none may carry a full ID number
# (18 characters with a valid GB 11643 check character), a full bank card number
# (16-19 digits passing Luhn), a password, PIN, token or secret given as a value
# (``password=...``, ``"token": "..."``, ``Bearer ...``), or any password literal
# the test sources use. A leak fails the run, naming the logger.

_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9X])")
_CARD = re.compile(r"(?<![0-9])[0-9]{16,19}(?![0-9])")
_SECRET_VALUE = re.compile(
    r"(?i)\b(?:password|passwd|pin|secret|token|totp)[\"']?\s*[:=]\s*[\"']?(?![*•])"
    r"([^\s\"',;}*]{4,})"
    r"|\bbearer\s+([A-Za-z0-9._~+/=-]{6,})"
)
_LITERAL = re.compile(
    r"(?i)\b\w*(?:password|totp|secret)\w*[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']"
)


def _test_password_literals() -> frozenset[str]:
    """Every password-like literal the test sources use (their values must never be logged)."""
    found: set[str] = set()
    for path in Path(__file__).resolve().parent.rglob("*.py"):
        found.update(_LITERAL.findall(path.read_text(encoding="utf-8")))
    return frozenset(found)


TEST_SECRETS = _test_password_literals()


def secrets_in(text: str) -> list[str]:
    """Passwords, PINs, tokens and secrets that ``text`` carries in full."""
    found = [a or b for a, b in _SECRET_VALUE.findall(text)]
    found += [s for s in TEST_SECRETS if s in text and s not in found]
    return found


def personal_numbers(text: str) -> list[str]:
    from stdnum import luhn
    from stdnum.cn import ric

    found = [m for m in _ID.findall(text) if ric.calc_check_digit(m) == m[-1]]
    found += [
        m for m in _CARD.findall(text) if m not in found and luhn.is_valid(m) and m[:1] in "3456"
    ]
    return found


class _LeakWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken record is not ours to judge
            return
        if record.exc_text:
            text += record.exc_text
        for number in personal_numbers(text):
            # Report where, never the number itself.
            self.leaks.append(
                f"{record.name} ({record.pathname}:{record.lineno}): ...{number[-4:]}"
            )
        for _secret in secrets_in(text):
            self.leaks.append(f"{record.name} ({record.pathname}:{record.lineno}): a secret")


LEAK_WATCH = _LeakWatch()


def pytest_sessionstart(session: pytest.Session) -> None:
    root = logging.getLogger()
    root.addHandler(LEAK_WATCH)
    root.setLevel(min(root.level or logging.WARNING, logging.DEBUG))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(LEAK_WATCH)
    if LEAK_WATCH.leaks:
        print("\nPersonal numbers or secrets written to logs during the tests:")  # noqa: T201
        for leak in LEAK_WATCH.leaks[:20]:
            print("  " + leak)  # noqa: T201
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
