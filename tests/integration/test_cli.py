"""The operator's command line, end to end, on a fresh SQLite file and a fresh PostgreSQL database.

Every test gets a database nobody has touched (``db_url``): the commands must migrate it
themselves. Output is read the way an operator's terminal or a CI log receives it (80
columns, no colour). The helpers here are shared with ``test_import.py``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import ColumnElement, Engine, func, inspect, select, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner, Result

from sscard import bootstrap
from sscard.access.tables import Staff
from sscard.bootstrap import prepare
from sscard.cards.model import CardState
from sscard.cards.tables import CardTransition
from sscard.cli.main import app
from sscard.core.clock import FixedClock
from sscard.core.policy import PRESETS_DIR
from sscard.db.engine import make_engine
from sscard.region.tables import CalendarSchedule, PolicyRecord
from sscard.register.service import hash_token
from sscard.register.tables import Organization, Person
from tests.conftest import PG_ADMIN_URL, SHANGHAI, START
from tests.factories import World

# ---------------------------------------------------------------- shared helpers

RUNNER = CliRunner()
SWEEP_JOBS = (
    "oral_report_lapsed",
    "auto_reported_lost",
    "unclaimed_destroyed",
    "old_card_restricted",
    "handout_overdue",
    "form_return_overdue",
    "idempotency_keys_pruned",
    "sessions_pruned",
    "events_pruned",
    "audit_partitions_added",
    "audit_sealed",
)


@contextmanager
def scratch_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A database nobody has touched: a new SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    name = f"sscard_cli_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is required for the CLI tests but cannot be reached at "
            f"{PG_ADMIN_URL}: {exc.orig}. Start it (make test does) or set SSCARD_TEST_PG_URL.",
            pytrace=False,
        )
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def operator_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A clean environment: no database or policy from the caller, an 80-column log."""
    monkeypatch.delenv("SSCARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("SSCARD_POLICY", raising=False)
    # What a cron job, a pipe or a CI log gets: rich falls back to 80 columns.
    monkeypatch.setenv("COLUMNS", "80")
    # A command that forgot --database would create ./sscard.db here, not in the repo.
    monkeypatch.chdir(tmp_path)
    yield


def invoke(*args: str) -> Result:
    """Run ``sscard ARGS``; a crash (as opposed to a refusal with an exit code) is raised.

    Like a process that exits, each run closes the database connections it opened.
    """
    engines: list[Engine] = []

    def tracked(url: str | None = None, **kwargs: Any) -> Engine:
        engines.append(make_engine(url, **kwargs))
        return engines[-1]

    with patch.object(bootstrap, "make_engine", tracked):
        result = RUNNER.invoke(app, list(args))
    for engine in engines:
        engine.dispose()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def squash(output: str) -> str:
    """The text without any whitespace, so a wrapped message still reads as one."""
    return "".join(output.split())


def says(output: str, expected: str) -> bool:
    """Whether ``output`` contains ``expected``, however the console wrapped it."""
    return squash(expected) in squash(output)


def count(url: str, model: Any, *where: ColumnElement[bool]) -> int:
    """How many rows of ``model`` the database holds (read with a separate engine)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    finally:
        engine.dispose()


def table_names(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def sweep_counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", output, re.MULTILINE)}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _operator_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    with operator_shell(monkeypatch, tmp_path):
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend (PostgreSQL unreachable → the test fails)."""
    with scratch_database(request.param, tmp_path) as url:
        yield url


# ---------------------------------------------------------------- db


def test_db_upgrade_and_check_succeed_on_an_empty_database(db_url: str) -> None:
    assert table_names(db_url) == []

    upgraded = invoke("db", "upgrade", "--database", db_url)
    assert upgraded.exit_code == 0, upgraded.stderr
    assert "database ready" in upgraded.stdout
    assert {"persons", "cards", "region_policies", "alembic_version"} <= set(table_names(db_url))

    checked = invoke("db", "check", "--database", db_url)
    assert checked.exit_code == 0, checked.stderr
    assert "models and migrations agree" in checked.stdout


def test_db_upgrade_reads_the_database_from_the_environment(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSCARD_DATABASE_URL", db_url)
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.stderr
    assert "persons" in table_names(db_url)
    assert not (Path.cwd() / "sscard.db").exists()


# ---------------------------------------------------------------- policy


def _bad_policy(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """The Dongguan preset with one line changed; returns the file and that line's number."""
    lines = (PRESETS_DIR / "dongguan.toml").read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith(old))
    lines[number - 1] = new
    path = tmp_path / "bad_policy.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, number


def test_b_1_policy_check_prints_the_banks(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSCARD_DATABASE_URL", db_url)
    result = invoke("policy", "check", "dongguan")
    assert result.exit_code == 0, result.stderr
    assert "441900" in result.stdout
    assert says(result.stdout, "DGB, CGB, BOC, CCB, ICBC, ABC")
    assert says(result.stdout, "20.00 / 20.00 yuan")  # F-1
    # Checking a file reads the file only: the database is not even created.
    assert table_names(db_url) == []


def test_policy_check_names_file_line_and_reason_of_a_bad_value(
    db_url: str, tmp_path: Path
) -> None:
    path, line = _bad_policy(tmp_path, "replacement_fen", "replacement_fen = -5")

    checked = invoke("policy", "check", str(path))
    assert checked.exit_code == 2
    assert checked.stdout == ""
    assert says(
        checked.stderr,
        f"{path}:{line}: fees.replacement_fen: Input should be greater than or equal to 0",
    )

    loaded = invoke("policy", "load", str(path), "--database", db_url)
    assert loaded.exit_code == 2
    assert says(loaded.stderr, f"{path}:{line}: fees.replacement_fen")
    assert count(db_url, PolicyRecord) == 0


def test_policy_check_prints_the_reason_verbatim(db_url: str, tmp_path: Path) -> None:
    # The second bank reuses the first one's code: the reason quotes the TOML table name.
    path, _ = _bad_policy(tmp_path, 'code = "CGB"', 'code = "DGB"')
    result = invoke("policy", "check", str(path))
    assert result.exit_code == 2
    assert says(result.stderr, "bank code 'DGB' appears twice in [[banks]]")
    assert table_names(db_url) == []


def test_policy_load_refuses_another_region_on_the_same_database(db_url: str) -> None:
    henan = invoke("policy", "load", "henan", "--database", db_url)
    assert henan.exit_code == 0, henan.stderr
    assert "policy of Henan loaded" in henan.stdout

    dongguan = invoke("policy", "load", "dongguan", "--database", db_url)
    assert dongguan.exit_code == 2
    assert says(
        dongguan.stderr,
        "this database belongs to region 410000; a policy for region 441900 cannot replace it",
    )
    assert count(db_url, PolicyRecord) == 1
    assert count(db_url, PolicyRecord, PolicyRecord.region_code == "441900") == 0
    # Dongguan's own bank never entered the register.
    assert count(db_url, Organization, Organization.code == "DGB") == 0


def test_policy_presets_lists_the_shipped_regions(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSCARD_DATABASE_URL", db_url)
    result = invoke("policy", "presets")
    assert result.exit_code == 0
    assert {"dongguan", "henan"} <= set(result.stdout.split())
    assert table_names(db_url) == []


# ---------------------------------------------------------------- demo


def test_demo_prints_tokens_and_is_idempotent(db_url: str) -> None:
    first = invoke("demo", "--database", db_url)
    assert first.exit_code == 0, first.stderr
    assert "demo-center" in first.stdout
    assert "demo-sp01" in first.stdout
    sizes = (count(db_url, Organization), count(db_url, Person), count(db_url, Staff))
    assert min(sizes) > 0

    second = invoke("demo", "--database", db_url)
    assert second.exit_code == 0, second.stderr
    assert "demo-center" in second.stdout
    assert (count(db_url, Organization), count(db_url, Person), count(db_url, Staff)) == sizes
    assert count(db_url, Staff, Staff.token_hash == hash_token("demo-center")) == 1


# ---------------------------------------------------------------- calendar

SCHEDULE_2027 = """\
year = 2027
holidays = ["2027-01-01", "2027-02-05..2027-02-11"]
workdays = ["2027-02-13", "2027-02-20"]
"""


def test_calendar_load_makes_next_year_official(db_url: str, tmp_path: Path) -> None:
    # 2026-12-20 is a Sunday; 9 working days are left in 2026, the rest fall in 2027.
    before = invoke("calendar", "add", "2026-12-20", "30", "--database", db_url)
    assert before.exit_code == 0, before.stderr
    assert before.stdout.startswith("2027-01-29 (provisional")

    schedule = tmp_path / "2027.toml"
    schedule.write_text(SCHEDULE_2027, encoding="utf-8")
    loaded = invoke("calendar", "load", str(schedule), "--database", db_url)
    assert loaded.exit_code == 0, loaded.stderr
    assert "2027: 8 holidays, 2 adjusted working days loaded" in loaded.stdout

    after = invoke("calendar", "add", "2026-12-20", "30", "--database", db_url)
    assert after.exit_code == 0, after.stderr
    # New Year's Day is a holiday now, so the 30th working day moves to Monday 1 February.
    assert after.stdout.strip() == "2027-02-01"
    assert "provisional" not in after.stdout


def test_calendar_load_refuses_a_weekday_as_adjusted_working_day(
    db_url: str, tmp_path: Path
) -> None:
    schedule = tmp_path / "2027.toml"
    schedule.write_text(SCHEDULE_2027.replace('"2027-02-20"', '"2027-01-04"'), encoding="utf-8")
    result = invoke("calendar", "load", str(schedule), "--database", db_url)
    assert result.exit_code == 2
    assert says(
        result.stderr,
        f"{schedule}: 2027-01-04 is a weekday; 'workdays' lists only adjusted working weekends",
    )
    assert count(db_url, CalendarSchedule) == 0
    still = invoke("calendar", "add", "2026-12-20", "30", "--database", db_url)
    assert "(provisional" in still.stdout


# ---------------------------------------------------------------- sweep


def test_sweep_at_a_moment_prints_every_job_count(db_url: str) -> None:
    result = invoke("sweep", "--at", "2027-01-05T09:00:00+08:00", "--database", db_url)
    assert result.exit_code == 0, result.stderr
    counts = sweep_counts(result.stdout)
    sealed = counts.pop("audit_sealed")  # the policy's installation is audited, then sealed
    assert sealed > 0
    # PostgreSQL: the months from January 2027 on that the migration did not make.
    added = counts.pop("audit_partitions_added")
    assert counts == dict.fromkeys(SWEEP_JOBS[:-2], 0) | {"total": sealed + added}


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("not-a-date", "--at 'not-a-date' is not an ISO date-time"),
        ("2027-01-05T09:00:00", "--at needs a timezone offset"),
    ],
)
def test_sweep_refuses_a_moment_it_cannot_place(db_url: str, at: str, reason: str) -> None:
    result = invoke("sweep", "--at", at, "--database", db_url)
    assert result.exit_code == 2
    assert says(result.stderr, reason)
    assert result.stdout == ""
    # Refused before the database was opened.
    assert table_names(db_url) == []


def test_l_1_oral_report_lapses_via_cli_sweep(db_url: str) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    svc = prepare(db_url, clock=FixedClock(START))
    try:
        world = World(svc.runtime)
        card = world.card(CardState.LOST_ORAL)
        assert card.state == CardState.LOST_ORAL
        reported = world.clock.now().astimezone(SHANGHAI)

        early = invoke("sweep", "--at", (reported + timedelta(days=4)).isoformat(), "-d", db_url)
        assert early.exit_code == 0, early.stderr
        assert sweep_counts(early.stdout)["oral_report_lapsed"] == 0
        assert world.reload(card).state == CardState.LOST_ORAL

        lapse = (reported + timedelta(days=6)).isoformat()
        swept = invoke("sweep", "--at", lapse, "--database", db_url)
        assert swept.exit_code == 0, swept.stderr
        assert sweep_counts(swept.stdout)["oral_report_lapsed"] == 1
        assert world.reload(card).state == CardState.ACTIVE

        again = invoke("sweep", "--at", lapse, "--database", db_url)
        assert again.exit_code == 0, again.stderr
        assert sweep_counts(again.stdout)["oral_report_lapsed"] == 0
        assert world.reload(card).state == CardState.ACTIVE
        lapsed = CardTransition.reason_code == "oral_report_lapsed"
        assert count(db_url, CardTransition, CardTransition.card_id == card.id, lapsed) == 1
    finally:
        svc.engine.dispose()


# ---------------------------------------------------------------- staff


def test_staff_add_prints_a_working_token(db_url: str) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    result = invoke("staff", "add", "SP01", "Li Lei", "--database", db_url)
    assert result.exit_code == 0, result.stderr
    match = re.search(r"token for Li Lei at SP01 \(shown once\): (\S+)", result.stdout)
    assert match is not None, result.stdout
    token = match[1]
    sp01 = select(Organization.id).where(Organization.code == "SP01").scalar_subquery()
    mine = (Staff.token_hash == hash_token(token), Staff.name == "Li Lei", Staff.org_id == sp01)
    assert count(db_url, Staff, *mine, Staff.role == "operator") == 1

    other = invoke("staff", "add", "SP01", "Han Meimei", "--role", "supervisor", "-d", db_url)
    assert other.exit_code == 0, other.stderr
    assert token not in other.stdout


def test_staff_add_refuses_an_unknown_organization(db_url: str) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    staff = count(db_url, Staff)
    result = invoke("staff", "add", "NOPE", "Li Lei", "--database", db_url)
    assert result.exit_code == 2
    assert says(result.stderr, "no organization with code 'NOPE'")
    assert "token" not in result.stdout
    assert count(db_url, Staff) == staff


def test_staff_add_refuses_an_unknown_role(db_url: str) -> None:
    result = invoke("staff", "add", "SP01", "Li Lei", "--role", "root", "--database", db_url)
    assert result.exit_code == 2
    assert says(result.stderr, "role must be operator, supervisor or administrator")
    assert table_names(db_url) == []
