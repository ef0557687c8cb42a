"""``sscard keys status|rotate-data|rotate-index`` on a fresh SQLite file and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from sscard.core.protect import BANK, SOCIAL, install
from sscard.db.engine import make_engine
from tests.integration.test_cli import invoke, operator_shell, scratch_database

NEW_DATA, NEW_INDEX = "a7" * 32, "b8" * 32


@pytest.fixture(autouse=True)
def _operator_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    with operator_shell(monkeypatch, tmp_path):
        yield
    for side in (SOCIAL, BANK):
        install(side, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path) as url:
        yield url


def _reconfigure(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """A new keyring configuration, as a restarted process would read it."""
    monkeypatch.setenv(variable, value)
    for side in (SOCIAL, BANK):
        install(side, None)


def _stored(url: str, sql: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).scalars())
    finally:
        engine.dispose()


def _status_row(output: str, column: str) -> str:
    return next(line for line in output.splitlines() if column in line)


def test_keys_rotate_data_then_rotate_index_from_the_command_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    status = invoke("keys", "status", "--database", db_url)
    assert status.exit_code == 0, status.stderr
    assert "v1: " in _status_row(status.stdout, "persons.id_number ")

    old = os.environ["SSCARD_DATA_KEY"]
    _reconfigure(monkeypatch, "SSCARD_DATA_KEYS", f"2:{NEW_DATA},1:{old}")
    behind = invoke("keys", "status", "--database", db_url).stdout
    assert "v2: 0" in _status_row(behind, "persons.id_number ")
    rotated = invoke("keys", "rotate-data", "--batch", "2", "--database", db_url)
    assert rotated.exit_code == 0, rotated.stderr
    assert "persons.id_number" in rotated.stdout
    assert all(v.startswith("v2:") for v in _stored(db_url, "SELECT id_number FROM persons"))
    again = invoke("keys", "rotate-data", "--database", db_url)
    assert "0 re-sealed" in _status_row(again.stdout, "persons.id_number")

    # Version 1 retired: everything still opens.
    _reconfigure(monkeypatch, "SSCARD_DATA_KEYS", f"2:{NEW_DATA}")
    old_index = os.environ["SSCARD_INDEX_KEY"]
    _reconfigure(monkeypatch, "SSCARD_INDEX_KEYS", f"2:{NEW_INDEX},1:{old_index}")
    recomputed = invoke("keys", "rotate-index", "--database", db_url)
    assert recomputed.exit_code == 0, recomputed.stderr
    assert all(h.startswith("h2:") for h in _stored(db_url, "SELECT id_number_hash FROM persons"))
    _reconfigure(monkeypatch, "SSCARD_INDEX_KEYS", f"2:{NEW_INDEX}")
    final = invoke("keys", "status", "--database", db_url)
    assert final.exit_code == 0, final.stderr
    row = _status_row(final.stdout, "persons.id_number_hash")
    assert row.split()[1:4] == ["index", "current", "v2"]
    assert row.endswith("behind: 0")


def test_keys_status_with_a_missing_key_version_says_so(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    _reconfigure(monkeypatch, "SSCARD_DATA_KEYS", f"2:{NEW_DATA}")  # version 1 dropped too soon
    status = invoke("keys", "status", "--database", db_url)
    assert "not configured: " in _status_row(status.stdout, "persons.id_number ")
    refused = invoke("keys", "rotate-data", "--database", db_url)
    assert refused.exit_code == 2
    assert "version 1, which is not configured" in " ".join(refused.stderr.split())
