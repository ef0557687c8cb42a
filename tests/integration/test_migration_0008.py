"""Migration 0008 on a database that already holds clear ID and bank card numbers.

A database is built at revision 0006 (before personal data was sealed), given rows in
clear with raw SQL, then upgraded to head: every value comes out sealed, every blind
index filled, and the application finds the rows as before. On a fresh SQLite file
and a fresh PostgreSQL database each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, column, insert, select, table, text
from sqlalchemy.orm import Session

from sscard.applications.tables import ChangeRequest
from sscard.bank.repo import load_account
from sscard.core.keys import KeyUnavailable
from sscard.core.protect import BANK, SOCIAL, install
from sscard.db.engine import make_engine
from sscard.db.migrate import check, upgrade
from sscard.register.service import find_person
from sscard.register.tables import Person
from tests.factories import next_id_number
from tests.integration.test_cli import scratch_database

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BANK_CARD = "6222021234567890128"
OLD_CARD = "YB000000042"


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with scratch_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine, "0006")
        yield engine
        engine.dispose()
    for side in (SOCIAL, BANK):
        install(side, None)


def _insert(conn: Any, table_name: str, /, **values: Any) -> int:
    t = table(table_name, column("id"), *(column(k) for k in values))
    new_id: int = conn.execute(insert(t).values(**values).returning(t.c.id)).scalar_one()
    return new_id


def _clear_rows(engine: Engine) -> dict[str, Any]:
    """Rows as revision 0006 stored them: numbers in clear."""
    numbers = [next_id_number() for _ in range(3)]
    with engine.begin() as conn:
        persons = [
            _insert(
                conn,
                "persons",
                id_number=number,
                id_kind="citizen",
                name=f"张{i}",
                gender="male",
                birth_date=date(1990, 5, 17),
                status="employed",
                medical_scheme="employee",
                old_medical_card_no=OLD_CARD if i == 0 else None,
                old_medical_card_state="normal" if i == 0 else "none",
                created_at=NOW,
                updated_at=NOW,
                version=1,
            )
            for i, number in enumerate(numbers)
        ]
        app = _insert(
            conn,
            "applications",
            form_number="F-0010-1",
            person_id=persons[0],
            kind="individual",
            state="accepted",
            bank_code="ICBC",
            form_data="{}",
            corrections="[]",
            issued_at=NOW,
            version=1,
        )
        card = _insert(
            conn,
            "cards",
            person_id=persons[0],
            application_id=app,
            bank_code="ICBC",
            state="at_outlet",
            card_number="A00000042",
            serial="SN0000000042",
            bank_card_number=BANK_CARD,
            ordered_at=NOW,
            ready_on=date(2026, 12, 1),
            ready_provisional=False,
            version=1,
        )
        _insert(
            conn,
            "bank_accounts",
            bank_code="ICBC",
            bank_card_number=BANK_CARD,
            serial="SN0000000042",
            card_id=card,
            holder_id_number=numbers[0],
            state="issued",
            failed_attempts=0,
            opened_at=NOW,
            version=1,
        )
        _insert(
            conn,
            "change_requests",
            person_id=persons[1],
            field_name="id_number",
            old_value=numbers[1],
            new_value=numbers[2],
            document="户口簿变更证明",
            state="draft",
            created_at=NOW,
            card_change_done=False,
            version=1,
        )
    return {"numbers": numbers, "persons": persons, "card": card}


def test_migration_0008_seals_clear_rows_and_keeps_them_searchable(at_0006: Engine) -> None:
    rows = _clear_rows(at_0006)
    upgrade(at_0006)
    check(at_0006)  # the migrated schema is the models' schema
    clear = {*rows["numbers"], BANK_CARD, OLD_CARD}
    with at_0006.connect() as conn:
        stored = [
            *conn.execute(text("SELECT id_number, id_number_hash FROM persons")).scalars(),
            *conn.execute(text("SELECT old_medical_card_no FROM persons")).scalars(),
            *conn.execute(text("SELECT bank_card_number_hash FROM cards")).scalars(),
            *conn.execute(text("SELECT old_value, new_value FROM change_requests")).one(),
            *conn.execute(
                text("SELECT bank_card_number, holder_id_number_hash FROM bank_accounts")
            ).one(),
        ]
    values = [v for v in stored if v is not None]
    assert len(values) == 3 + 1 + 1 + 2 + 2
    for value in values:
        assert value.startswith(("v1:", "h1:"))
        assert not any(number in value for number in clear)
    with Session(at_0006) as s:
        for pid, number in zip(rows["persons"], rows["numbers"], strict=True):
            assert find_person(s, number).id == pid
        first = s.get(Person, rows["persons"][0])
        assert first is not None
        assert first.old_medical_card_no == OLD_CARD
        account = load_account(s, BANK_CARD, lock=False)
        assert (account.card_id, account.holder_id_number) == (rows["card"], rows["numbers"][0])
        req = s.scalars(select(ChangeRequest)).one()
        assert (req.old_value, req.new_value) == (rows["numbers"][1], rows["numbers"][2])


def test_migration_0008_without_the_keys_stops_with_a_clear_message(
    at_0006: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_rows(at_0006)
    for name in ("SSCARD_DATA_KEY", "SSCARD_DATA_KEYS", "SSCARD_CREATE_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSCARD_KEY_DIR", str(tmp_path / "no-keys"))
    install(SOCIAL, None)
    with pytest.raises(KeyUnavailable, match=r"migration 0008 .* SSCARD_DATA_KEY"):
        upgrade(at_0006)
    with at_0006.connect() as conn:  # nothing changed: still 0006, numbers still in clear
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
        clear = conn.execute(text("SELECT id_number FROM persons")).scalars().all()
        assert [len(n) for n in clear] == [18, 18, 18]
    monkeypatch.undo()
    install(SOCIAL, None)
    upgrade(at_0006)  # with the keys back, the same upgrade goes through
