"""Operator commands of the audit trail: ``sscard audit seal`` and ``sscard audit verify`` (S-1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Executable, func, select, text, update

from sscard.audit.tables import AuditRecord
from sscard.db.engine import make_engine
from sscard.db.migrate import upgrade
from tests.integration.test_audit_trail import triggers_off
from tests.integration.test_cli import _operator_shell, count, db_url, invoke, says

__all__ = ["_operator_shell", "db_url"]  # fixtures shared with test_cli

INTACT = re.compile(
    r"audit chain intact: (\d+) entries sealed, (\d+) checked intact from seq (\d+), "
    r"(\d+) waiting for sealing"
)


def intact(output: str) -> tuple[int, ...]:
    found = INTACT.search(" ".join(output.split()))
    assert found, output
    return tuple(int(g) for g in found.groups())


def tamper(url: str, statement: Executable) -> None:
    """Change the table as its owner would: append-only triggers off, one statement, commit."""
    engine = make_engine(url)
    with engine.begin() as conn, triggers_off(conn):
        conn.execute(statement)
    engine.dispose()


def test_s1_audit_seal_then_verify_then_catch_a_modified_entry(db_url: str) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    waiting = count(db_url, AuditRecord, AuditRecord.chain_seq.is_(None))
    assert waiting > 0

    before = invoke("audit", "verify", "--database", db_url)
    assert before.exit_code == 0, before.stderr
    assert intact(before.stdout) == (0, 0, 1, waiting)

    sealed = invoke("audit", "seal", "--database", db_url, "--batch-size", "7")
    assert sealed.exit_code == 0, sealed.stderr
    assert says(sealed.stdout, f"sealed {waiting} audit entries")
    assert invoke("audit", "seal", "--database", db_url).stdout.strip() == "sealed 0 audit entries"

    good = invoke("audit", "verify", "--database", db_url)
    assert good.exit_code == 0, good.stderr
    assert intact(good.stdout) == (waiting, waiting, 1, 0)

    engine = make_engine(db_url)
    with engine.connect() as conn:
        victim = conn.execute(
            select(
                AuditRecord.id, AuditRecord.chain_seq, AuditRecord.occurred_at, AuditRecord.action
            ).where(AuditRecord.chain_seq == waiting // 2)
        ).one()
    engine.dispose()
    tamper(db_url, update(AuditRecord).where(AuditRecord.id == victim.id).values(detail={}))

    broken = invoke("audit", "verify", "--database", db_url)
    assert broken.exit_code == 1
    when = victim.occurred_at.replace(tzinfo=victim.occurred_at.tzinfo or UTC).astimezone(UTC)
    assert says(
        broken.stderr,
        f"audit chain broken at seq {victim.chain_seq}: entry {victim.id} "
        f"({when.isoformat()}, {victim.action}): hash mismatch: "
        "its columns no longer match its hash",
    )
    assert says(broken.stdout, f"{waiting} entries sealed, {victim.chain_seq - 1} checked intact")

    after = invoke("audit", "verify", "--from-seq", str(victim.chain_seq + 1), "-d", db_url)
    assert after.exit_code == 0, after.stderr
    assert intact(after.stdout)[1:3] == (waiting - victim.chain_seq, victim.chain_seq + 1)


def test_s1_audit_verify_names_a_deleted_entry(db_url: str) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    assert invoke("audit", "seal", "--database", db_url).exit_code == 0
    engine = make_engine(db_url)
    with engine.begin() as conn, triggers_off(conn):
        conn.execute(text("DELETE FROM audit_records WHERE chain_seq = 3"))
        after = conn.execute(select(AuditRecord.id).where(AuditRecord.chain_seq == 4)).scalar_one()
    engine.dispose()
    broken = invoke("audit", "verify", "--database", db_url)
    assert broken.exit_code == 1
    assert says(broken.stderr, f"audit chain broken at seq 4: entry {after} (")
    assert says(broken.stderr, "gap: entry 3 is missing")


def test_audit_commands_refuse_without_the_key_or_with_a_bad_seq(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SSCARD_AUDIT_KEY")
    monkeypatch.delenv("SSCARD_CREATE_KEYS", raising=False)
    monkeypatch.setenv("SSCARD_KEY_DIR", str(tmp_path / "keys"))
    for command in ("seal", "verify"):
        result = invoke("audit", command, "--database", db_url)
        assert result.exit_code == 2
        assert says(result.stderr, "error: no key 'audit': set SSCARD_AUDIT_KEY (hex)")
    monkeypatch.setenv("SSCARD_AUDIT_KEY", "a7" * 32)
    bad = invoke("audit", "verify", "--from-seq", "0", "--database", db_url)
    assert bad.exit_code == 2
    assert "--from-seq" in bad.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_s1_migration_keeps_existing_audit_records_and_they_start_unsealed(
    kind: str, tmp_path: Path
) -> None:
    from tests.integration.test_cli import scratch_database

    with scratch_database(kind, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(
                AuditRecord.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "occurred_at": datetime(2026, 11, 30, 8, i, tzinfo=UTC),
                        "channel": "system",
                        "action": "card.activate",
                        "subject_type": "card",
                        "subject_id": i,
                        "detail": {"to": "active"},
                    }
                    for i in range(5)
                ],
            )
        upgrade(engine)
        with engine.connect() as conn:
            waiting = conn.scalar(
                select(func.count()).select_from(AuditRecord).where(AuditRecord.chain_seq.is_(None))
            )
        assert waiting == 5
        with engine.begin() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(update(AuditRecord).values(action="card.destroy"))
        engine.dispose()
        # The command installs the policy first (audited too); the old entries come first.
        assert invoke("audit", "seal", "-d", url).exit_code == 0
        old = AuditRecord.occurred_at < datetime(2026, 12, 1, tzinfo=UTC)
        assert count(url, AuditRecord, old, AuditRecord.chain_seq <= 5) == 5
        result = invoke("audit", "verify", "-d", url)
        assert result.exit_code == 0, result.stderr
        sealed, checked, _, unsealed = intact(result.stdout)
        assert (checked, unsealed) == (sealed, 0)
        assert sealed >= 5
