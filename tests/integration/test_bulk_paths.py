"""The bulk paths (COPY into a staging table on PostgreSQL, set-based writes) keep every
rule of the imports and of a unit's batch, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from sscard.accounts.imports import import_contributions, import_old_card_balances
from sscard.accounts.ledger import check
from sscard.accounts.model import AccountKind
from sscard.accounts.tables import Contribution, LedgerAccount, LedgerTxn
from sscard.applications import batches
from sscard.applications.model import form_number_valid
from sscard.applications.service import _form_values
from sscard.audit.sealer import seal
from sscard.audit.tables import AuditRecord
from sscard.audit.verification import verify
from sscard.core.protect import ID_NUMBER, SOCIAL
from sscard.db.types import blind
from sscard.events.tables import OutboxEvent
from sscard.register.importer import import_persons, import_units
from sscard.register.model import OrgKind
from sscard.register.service import has_id_number
from sscard.register.tables import Organization, Person, Unit
from tests.factories import World, next_id_number

PERSON_HEADER = (
    "id_number,name,status,phone,unit_code,medical_scheme,insured_since,old_medical_card_no\n"
)


class Boom(RuntimeError):
    """A failure in the middle of a batch's writes."""


def _count(world: World, column: object, *where: object) -> int:
    with world.rt.uow() as uow:
        return int(uow.session.scalar(select(func.count(column)).where(*where)) or 0)  # type: ignore[arg-type]


def _person_line(number: str, unit: str = "", old_card: str = "") -> str:
    return f"{number},王芳,employed,13800138000,{unit},employee,2020-01-01,{old_card}\n"


def test_person_import_reports_file_and_database_errors_by_line_and_writes_nothing(
    world: World, tmp_path: Path
) -> None:
    registered = world.person()
    fresh, repeated = next_id_number(), next_id_number()
    csv = tmp_path / "persons.csv"
    csv.write_text(
        PERSON_HEADER
        + _person_line(fresh)
        + _person_line(repeated)
        + _person_line(repeated)
        + _person_line(registered.id_number)
        + _person_line(next_id_number(), unit="NO-SUCH-UNIT")
        + _person_line("123")
    )
    before = _count(world, Person.id)
    with world.rt.uow() as uow:
        report = import_persons(uow, world.rt, actor=world.actor(OrgKind.CENTER), path=csv)
    assert sorted((e.line, e.field) for e in report.errors) == [
        (4, "id_number"),  # repeats line 3
        (5, "id_number"),  # registered
        (6, "unit_code"),
        (7, "id_number"),  # malformed
    ]
    assert report.written == 0
    assert _count(world, Person.id) == before
    assert _count(world, AuditRecord.id, AuditRecord.action == "person.registered") == 0


def test_person_import_stores_sealed_blind_indexed_rows_with_audit_and_events(
    world: World, tmp_path: Path
) -> None:
    unit = world.unit()
    numbers = [next_id_number() for _ in range(3)]
    csv = tmp_path / "persons.csv"
    csv.write_text(
        PERSON_HEADER
        + _person_line(numbers[0], unit=unit.code, old_card="YB123")
        + _person_line(numbers[1])
        + _person_line(numbers[2], unit=unit.code)
    )
    with world.rt.uow() as uow:
        report = import_persons(uow, world.rt, actor=world.actor(OrgKind.CENTER), path=csv)
    assert (report.ok, report.written) == (True, 3)
    with world.rt.uow() as uow:
        s = uow.session
        raw = s.execute(  # as stored, past the sealed column's type
            text("SELECT id_number, id_number_hash FROM persons ORDER BY id DESC")
        ).first()
        found = s.scalars(select(Person).where(has_id_number(numbers[0]))).one()
        audits = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "person.registered")
        ).all()
        events = s.scalar(
            select(func.count(OutboxEvent.id)).where(OutboxEvent.type == "person.registered")
        )
    assert raw is not None
    assert raw[0].startswith("v")  # sealed at rest
    assert numbers[2] not in raw[0]
    assert raw[1] == blind(SOCIAL, ID_NUMBER, numbers[2])
    assert (found.unit_org_id, found.old_medical_card_no, found.version) == (unit.id, "YB123", 1)
    assert found.old_medical_card_state == "normal"
    assert all(a.subject_id == a.person_id for a in audits)
    assert len(audits) == 3
    assert {a.detail["source"] for a in audits} == {"persons.csv"}
    assert events == 3
    seal(world.rt)
    assert verify(world.rt).intact


def test_person_import_writes_nothing_half_when_the_batch_fails(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "persons.csv"
    csv.write_text(PERSON_HEADER + _person_line(next_id_number()) + _person_line(next_id_number()))
    before = _count(world, Person.id)

    def fail(*args: object, **kwargs: object) -> None:
        raise Boom

    monkeypatch.setattr("sscard.register.importer.record_select", fail)
    with world.rt.uow() as uow, pytest.raises(Boom):
        import_persons(uow, world.rt, actor=world.actor(OrgKind.CENTER), path=csv)
    assert _count(world, Person.id) == before
    monkeypatch.undo()
    with world.rt.uow() as uow:  # the staging table went with the rollback
        assert import_persons(uow, world.rt, actor=world.actor(OrgKind.CENTER), path=csv).ok
    assert _count(world, Person.id) == before + 2


def test_unit_import_refuses_taken_codes_and_usccs_and_skip_invalid_writes_the_rest(
    world: World, tmp_path: Path
) -> None:
    from stdnum.cn import uscc

    taken = world.unit()
    with world.rt.uow() as uow:
        taken_uscc = uow.session.scalar(select(Unit.uscc).where(Unit.org_id == taken.id))

    def new_uscc(n: int) -> str:
        body = f"91441900M{90_000_000 + n:08d}"
        return body + uscc.calc_check_digit(body)

    csv = tmp_path / "units.csv"
    csv.write_text(
        "code,name,uscc,unit_kind,agreement_bank_code\n"
        f"BULK-A,甲公司,{new_uscc(1)},ordinary,ICBC\n"
        f"{taken.code},乙公司,{new_uscc(2)},ordinary,\n"
        f"BULK-C,丙公司,{taken_uscc},ordinary,\n"
        f"BULK-D,丁公司,{new_uscc(4)},ordinary,\n"
    )
    center = world.actor(OrgKind.CENTER)
    with world.rt.uow() as uow:
        refused = import_units(uow, world.rt, actor=center, path=csv)
    assert [(e.line, e.field) for e in refused.errors] == [(3, "code"), (4, "uscc")]
    assert _count(world, Organization.id, Organization.code.in_(["BULK-A", "BULK-D"])) == 0
    with world.rt.uow() as uow:
        report = import_units(uow, world.rt, actor=center, path=csv, skip_invalid=True)
    assert report.written == 2
    with world.rt.uow() as uow:
        rows = uow.session.execute(
            select(Organization.code, Unit.agreement_bank_code, Unit.agreement_signed_at)
            .join(Unit, Unit.org_id == Organization.id)
            .where(Organization.code.in_(["BULK-A", "BULK-D"]))
            .order_by(Organization.code)
        ).all()
    assert [(r.code, r.agreement_bank_code, r.agreement_signed_at is not None) for r in rows] == [
        ("BULK-A", "ICBC", True),
        ("BULK-D", None, False),
    ]
    assert _count(world, AuditRecord.id, AuditRecord.action == "unit.registered") == 2


def test_contribution_import_posts_every_line_balanced_audited_and_announced(
    world: World, tmp_path: Path
) -> None:
    unit = world.unit()
    people = [world.person(unit=unit) for _ in range(2)]
    csv = tmp_path / "contrib.csv"
    csv.write_text(
        "id_number,month,amount_fen\n"
        + "".join(
            f"{p.id_number},{month},{amount}\n"
            for month, amount in (("2026-09", 100), ("2026-10", 250))
            for p in people
        )
    )
    supervisor = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow:
        report = import_contributions(
            uow, world.rt, actor=supervisor, unit_code=unit.code, path=csv
        )
    assert (report.ok, report.written) == (True, 4)
    with world.rt.uow() as uow:
        s = uow.session
        balances = dict(
            s.execute(
                select(LedgerAccount.person_id, LedgerAccount.balance_fen).where(
                    LedgerAccount.kind == AccountKind.PERSONAL.value,
                    LedgerAccount.person_id.in_([p.id for p in people]),
                )
            ).all()
        )
        pool = s.scalar(
            select(LedgerAccount.balance_fen).where(
                LedgerAccount.kind == AccountKind.FUND_POOL.value,
                LedgerAccount.org_id == unit.id,
            )
        )
        assert check(s) == []
        audits = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "medical_account.contribution")
        ).all()
        txns = {t.id: t for t in s.scalars(select(LedgerTxn)).all()}
        months = s.execute(select(Contribution.month, Contribution.txn_id)).all()
        events = s.scalar(
            select(func.count(OutboxEvent.id)).where(
                OutboxEvent.type == "medical_account.contribution"
            )
        )
    assert balances == {people[0].id: 350, people[1].id: 350}
    assert pool == -700
    assert sorted(a.detail["amount_fen"] for a in audits) == [100, 100, 250, 250]
    assert all(txns[a.subject_id or 0].person_id == a.person_id for a in audits)
    assert all(txns[t].detail == {"source": "contrib.csv", "month": m} for m, t in months)
    assert events == 4
    seal(world.rt)
    assert verify(world.rt).intact


def test_contribution_duplicates_refused_in_the_file_and_against_the_database(
    world: World, tmp_path: Path
) -> None:
    unit = world.unit()
    person = world.person(unit=unit)
    csv = tmp_path / "contrib.csv"
    csv.write_text(
        f"id_number,month,amount_fen\n{person.id_number},2026-10,100\n"
        f"{person.id_number},2026-10,100\n"
    )
    supervisor = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow:
        twice = import_contributions(uow, world.rt, actor=supervisor, unit_code=unit.code, path=csv)
    assert [(e.line, e.field) for e in twice.errors] == [(3, "month")]
    csv.write_text(f"id_number,month,amount_fen\n{person.id_number},2026-10,100\n")
    with world.rt.uow() as uow:
        assert import_contributions(
            uow, world.rt, actor=supervisor, unit_code=unit.code, path=csv
        ).ok
    with world.rt.uow() as uow:
        again = import_contributions(uow, world.rt, actor=supervisor, unit_code=unit.code, path=csv)
    assert [(e.line, e.message) for e in again.errors] == [(2, "2026-10 was already imported")]
    assert _count(world, Contribution.id, Contribution.person_id == person.id) == 1


def test_contribution_import_writes_nothing_half_when_the_batch_fails(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = world.unit()
    person = world.person(unit=unit)
    csv = tmp_path / "contrib.csv"
    csv.write_text(f"id_number,month,amount_fen\n{person.id_number},2026-10,100\n")

    def fail(*args: object, **kwargs: object) -> None:
        raise Boom

    monkeypatch.setattr("sscard.accounts.imports.record_select", fail)
    supervisor = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow, pytest.raises(Boom):
        import_contributions(uow, world.rt, actor=supervisor, unit_code=unit.code, path=csv)
    assert _count(world, LedgerTxn.id, LedgerTxn.person_id == person.id) == 0
    assert _count(world, LedgerAccount.id, LedgerAccount.person_id == person.id) == 0
    assert _count(world, Contribution.id) == 0


def test_old_card_import_refuses_persons_without_an_open_old_card(
    world: World, tmp_path: Path
) -> None:
    holder, other = world.person(old_card=True), world.person()
    csv = tmp_path / "old.csv"
    csv.write_text(f"id_number,balance_fen\n{holder.id_number},4000\n{other.id_number},10\n")
    supervisor = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow:
        refused = import_old_card_balances(uow, world.rt, actor=supervisor, path=csv)
    assert [(e.line, e.field) for e in refused.errors] == [(3, "id_number")]
    with world.rt.uow() as uow:
        report = import_old_card_balances(
            uow, world.rt, actor=supervisor, path=csv, skip_invalid=True
        )
        balance = uow.session.scalar(
            select(LedgerAccount.balance_fen).where(
                LedgerAccount.kind == AccountKind.OLD_CARD.value,
                LedgerAccount.person_id == holder.id,
            )
        )
        assert check(uow.session) == []
    assert (report.written, balance) == (1, 4000)


def test_a_4_batch_forms_carry_each_persons_printed_values_and_unique_numbers(
    world: World,
) -> None:
    unit = world.unit(bank="ICBC")
    people = [world.person(unit=unit) for _ in range(3)]
    with world.rt.uow() as uow:
        batch, apps = batches.issue_batch(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            unit_code=unit.code,
            stage="2026-Q1",
            collector=batches.Collector(name="张三", id_number=people[0].id_number),
        )
    assert [a.person_id for a in apps] == [p.id for p in people]
    assert all(form_number_valid(a.form_number) for a in apps)
    assert len({a.form_number for a in apps}) == 3
    for app, person in zip(apps, people, strict=True):
        assert app.form_data == _form_values(person)
        assert (app.batch_id, app.state, app.bank_code) == (batch.id, "issued", "ICBC")
        assert (app.return_due, app.issued_at, app.version) == (
            batch.return_due,
            batch.issued_at,
            1,
        )
        assert app.corrections == []
