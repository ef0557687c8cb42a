"""Operator commands of the medical account: contribution import and the ledger check."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from sscard.accounts.tables import LedgerAccount
from sscard.db.engine import make_engine
from sscard.register.tables import Person
from tests.integration.test_cli import _operator_shell, db_url, invoke, says

__all__ = ["_operator_shell", "db_url"]  # fixtures shared with test_cli


def test_c_4_contributions_import_then_ledger_check(db_url: str, tmp_path: Path) -> None:
    assert invoke("demo", "--database", db_url).exit_code == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        numbers = list(
            conn.execute(
                select(Person.id_number)
                .where(Person.unit_org_id.is_not(None))
                .order_by(Person.id)
                .limit(2)
            ).scalars()
        )
    engine.dispose()
    csv = tmp_path / "acme-2026-10.csv"
    csv.write_text(
        f"id_number,month,amount_fen\n{numbers[0]},2026-10,15000\n{numbers[1]},2026-10,abc\n"
    )
    bad = invoke("import", "contributions", "U-ACME", str(csv), "--database", db_url)
    assert bad.exit_code == 1
    assert says(bad.stderr, f"{csv}:3: amount_fen:")
    assert numbers[1] not in bad.stderr
    csv.write_text(f"id_number,month,amount_fen\n{numbers[0]},2026-10,15000\n")
    good = invoke("import", "contributions", "U-ACME", str(csv), "--database", db_url)
    assert good.exit_code == 0, good.stderr
    assert says(good.stdout, "imported 1 of 1 contributions")
    checked = invoke("ledger", "check", "--database", db_url)
    assert checked.exit_code == 0
    assert says(checked.stdout, "ledger consistent")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            update(LedgerAccount).where(LedgerAccount.kind == "personal").values(balance_fen=1)
        )
    engine.dispose()
    broken = invoke("ledger", "check", "--database", db_url)
    assert broken.exit_code == 1
    assert says(broken.stderr, "stored 1, entries sum to 15000")
