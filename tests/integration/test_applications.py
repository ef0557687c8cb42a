"""Getting a card: unit batches, individual forms, photos, bank choice, data changes."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from sscard.access.model import Agent, AgentDocument
from sscard.applications import batches, changes
from sscard.applications import service as applications
from sscard.applications.model import form_number_valid
from sscard.applications.tables import Application
from sscard.cards.model import CardState
from sscard.cards.tables import Card, Fee
from sscard.core.errors import (
    AlreadyExists,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PolicyRefused,
)
from sscard.register import service as register
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number


def _collector() -> batches.Collector:
    return batches.Collector(name="王芳", id_number=next_id_number())


def _issue(world: World, unit_code: str) -> tuple[int, list[Application]]:
    with world.rt.uow() as uow:
        batch, apps = batches.issue_batch(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            unit_code=unit_code,
            stage="2026-Q1",
            collector=_collector(),
        )
    return batch.id, apps


def _photo(world: World, app_id: int) -> None:
    with world.rt.uow() as uow:
        applications.correct_form(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            application_id=app_id,
            photo_source="id_card_authorisation",
        )


def test_a_1_only_insured_persons_are_due_a_card(world: World) -> None:
    unit = world.unit()
    insured = world.person(unit=unit)
    world.person(unit=unit, insured=False)
    _, apps = _issue(world, unit.code)
    assert [a.person_id for a in apps] == [insured.id]
    flexible = world.person(insured=False)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        applications.issue_individual(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            person_id=flexible.id,
            bank_code="ICBC",
        )
    assert exc.value.extra["reason"] == "not_insured"


def test_a_2_unit_needs_a_bank_agreement_first(world: World) -> None:
    unit = world.unit(bank=None)
    world.person(unit=unit)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        batches.issue_batch(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            unit_code=unit.code,
            stage="s1",
            collector=_collector(),
        )
    assert exc.value.extra["reason"] == "no_agreement"


def test_a_2_unit_bundled_flow_to_summary_and_ordered_cards(world: World) -> None:
    unit = world.unit(bank="ABC")
    people = [world.person(unit=unit) for _ in range(3)]
    batch_id, apps = _issue(world, unit.code)
    assert {a.person_id for a in apps} == {p.id for p in people}
    expected_due = world.working_days_after(
        world.rt.today(), world.rt.policy.deadlines.form_return_working_days
    )
    assert all(a.return_due == expected_due for a in apps)
    # Step 4: the insured corrects the form through the unit (phone) and settles photos.
    with world.rt.uow() as uow:
        corrected = applications.correct_form(
            uow,
            world.rt,
            actor=world.unit_actor(unit),
            application_id=apps[0].id,
            changes={"phone": "13912345678"},
            photo_source="id_card_authorisation",
        )
    assert corrected.form_data["phone"] == "13912345678"
    assert corrected.corrections[0]["old"] == "13800138000"
    _photo(world, apps[1].id)  # apps[2] has no photo: rejected at the check (C-3)
    sp = world.actor(OrgKind.SERVICE_POINT)
    with world.rt.uow() as uow:
        batches.return_batch(uow, world.rt, actor=sp, batch_id=batch_id)
    with world.rt.uow() as uow:
        summary = batches.check_batch(uow, world.rt, actor=sp, batch_id=batch_id)
    assert len(summary.accepted) == 2
    assert [a.id for a, _ in summary.rejected] == [apps[2].id]
    with world.rt.uow() as uow:
        cards = list(uow.session.scalars(select(Card).where(Card.unit_org_id == unit.id)))
        phone = uow.session.get(Person, people[0].id)
    assert phone is not None
    assert phone.phone == "13912345678"
    assert len(cards) == 2
    ready = world.working_days_after(world.rt.today(), 30)
    assert all(c.state == CardState.ORDERED and c.ready_on == ready for c in cards)
    assert summary.ready_on == ready.isoformat()


def test_a_2_unit_cannot_correct_another_units_form(world: World) -> None:
    unit, other = world.unit(), world.unit()
    world.person(unit=unit)
    _, apps = _issue(world, unit.code)
    with world.rt.uow() as uow, pytest.raises(NotFound):
        applications.correct_form(
            uow,
            world.rt,
            actor=world.unit_actor(other),
            application_id=apps[0].id,
            changes={"phone": "13912345678"},
        )


def test_a_3_individual_flow_for_flexible_employee(world: World) -> None:
    card = world.ordered_card(bank="BOC")
    assert card.state == CardState.ORDERED
    assert card.unit_org_id is None
    assert card.bank_code == "BOC"


def test_a_3_unit_members_apply_through_their_unit(world: World) -> None:
    employee = world.person(unit=world.unit())
    with world.rt.uow() as uow, pytest.raises(InvalidInput) as exc:
        applications.issue_individual(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            person_id=employee.id,
            bank_code="ICBC",
        )
    assert "unit applies in a bundle" in exc.value.detail


def test_a_4_one_unique_form_per_person_with_valid_number(world: World) -> None:
    person = world.person()
    sp = world.actor(OrgKind.SERVICE_POINT)
    with world.rt.uow() as uow:
        app = applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="ICBC"
        )
    assert form_number_valid(app.form_number)
    with world.rt.uow() as uow, pytest.raises(InvalidInput) as exc:
        applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="ICBC"
        )
    assert app.form_number in exc.value.detail


def test_a_4_forms_are_issued_in_stages(world: World) -> None:
    unit = world.unit()
    for _ in range(5):
        world.person(unit=unit)
    sp = world.actor(OrgKind.SERVICE_POINT)
    with world.rt.uow() as uow:
        _, first = batches.issue_batch(
            uow,
            world.rt,
            actor=sp,
            unit_code=unit.code,
            stage="stage-1",
            collector=_collector(),
            limit=3,
        )
    with world.rt.uow() as uow:
        _, second = batches.issue_batch(
            uow, world.rt, actor=sp, unit_code=unit.code, stage="stage-2", collector=_collector()
        )
    assert len(first) == 3
    assert len(second) == 2
    assert not {a.person_id for a in first} & {a.person_id for a in second}
    numbers = [a.form_number for a in first + second]
    assert len(set(numbers)) == 5


def test_a_5_collecting_agent_needs_unit_certificate(world: World) -> None:
    unit = world.unit()
    world.person(unit=unit)
    agent = Agent(name="李四", id_number=next_id_number(), document=AgentDocument.POWER_OF_ATTORNEY)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        batches.issue_batch(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            unit_code=unit.code,
            stage="s",
            collector=batches.Collector("王芳", next_id_number(), agent),
        )
    assert exc.value.extra["reason"] == "missing_document"


def test_b_2_agreement_follows_forcing_rule(world: World) -> None:
    center = world.actor(OrgKind.CENTER)
    village = world.unit(kind="village_community", bank=None)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        register.sign_agreement(uow, world.rt, actor=center, unit_id=village.id, bank_code="ICBC")
    assert exc.value.extra["forced_bank"] == "DGB"
    with world.rt.uow() as uow:
        unit = register.sign_agreement(
            uow, world.rt, actor=center, unit_id=village.id, bank_code="DGB"
        )
    assert unit.agreement_bank_code == "DGB"


def test_b_3_flexible_employee_in_comprehensive_scheme_keeps_guangfa(world: World) -> None:
    person = world.person(scheme="comprehensive")
    sp = world.actor(OrgKind.SERVICE_POINT)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="ICBC"
        )
    assert exc.value.extra["forced_bank"] == "CGB"
    with world.rt.uow() as uow:
        app = applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="CGB"
        )
    assert app.bank_code == "CGB"


def test_c_3_studio_photo_needs_receipt_and_listed_studio(world: World) -> None:
    person = world.person()
    sp = world.actor(OrgKind.SERVICE_POINT)
    studio = world.org(OrgKind.PHOTO_STUDIO)
    with world.rt.uow() as uow:
        app = applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="ICBC"
        )
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        applications.correct_form(
            uow, world.rt, actor=sp, application_id=app.id, photo_source="studio_receipt"
        )
    with world.rt.uow() as uow:
        done = applications.correct_form(
            uow,
            world.rt,
            actor=sp,
            application_id=app.id,
            photo_source="studio_receipt",
            photo_receipt_no="XP-0001",
            studio_code=studio.code,
        )
    assert (done.photo_source, done.photo_receipt_no) == ("studio_receipt", "XP-0001")


def test_c_3_form_without_photo_is_rejected_at_check(world: World) -> None:
    person = world.person()
    sp = world.actor(OrgKind.SERVICE_POINT)
    with world.rt.uow() as uow:
        app = applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="ICBC"
        )
    with world.rt.uow() as uow:
        applications.return_form(uow, world.rt, actor=sp, application_id=app.id)
    with world.rt.uow() as uow:
        checked, card = applications.check_individual(
            uow, world.rt, actor=sp, application_id=app.id
        )
    assert card is None
    assert checked.state == "rejected"
    assert "C-3" in (checked.reject_reason or "")


def test_f_1_first_card_is_free(world: World) -> None:
    card = world.ordered_card()
    with world.rt.uow() as uow:
        fees = list(uow.session.scalars(select(Fee).where(Fee.card_id == card.id)))
    assert [(f.basis, f.amount_fen, f.voucher_no) for f in fees] == [("first_card_free", 0, None)]


def test_id_4_change_of_id_number_is_reviewed_and_kept(world: World) -> None:
    person = world.person()
    sp, center = world.actor(OrgKind.SERVICE_POINT), world.actor(OrgKind.CENTER, role="supervisor")
    new_number = next_id_number()
    req = world.change_request(
        person.id, field_name="id_number", new_value=new_number, document="户口簿变更证明"
    )
    assert req.state == "draft"
    with world.rt.uow() as uow, pytest.raises(IllegalTransition):
        changes.decide(uow, world.rt, actor=center, request_id=req.id, action="approve")
    with world.rt.uow() as uow:
        changes.decide(uow, world.rt, actor=sp, request_id=req.id, action="submit")
    with world.rt.uow() as uow, pytest.raises(Forbidden):
        changes.decide(uow, world.rt, actor=sp, request_id=req.id, action="approve")
    with world.rt.uow() as uow:
        done = changes.decide(uow, world.rt, actor=center, request_id=req.id, action="approve")
    assert (done.old_value, done.new_value) == (person.id_number, new_number)
    with world.rt.uow() as uow:
        fresh = uow.session.get(Person, person.id)
    assert fresh is not None
    assert fresh.id_number == new_number


def test_id_4_declined_request_needs_reason_and_changes_nothing(world: World) -> None:
    person = world.person(name="张三")
    sp, center = world.actor(OrgKind.SERVICE_POINT), world.actor(OrgKind.CENTER, role="supervisor")
    req = world.change_request(person.id, field_name="name", new_value="张叁", document="公安证明")
    with world.rt.uow() as uow:
        changes.decide(uow, world.rt, actor=sp, request_id=req.id, action="submit")
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        changes.decide(uow, world.rt, actor=center, request_id=req.id, action="decline")
    with world.rt.uow() as uow:
        done = changes.decide(
            uow, world.rt, actor=center, request_id=req.id, action="decline", reason="证明材料不全"
        )
    assert done.state == "declined"
    with world.rt.uow() as uow:
        fresh = uow.session.get(Person, person.id)
    assert fresh is not None
    assert fresh.name == "张三"


def test_id_4_name_cannot_be_changed_on_the_form(world: World) -> None:
    unit = world.unit()
    world.person(unit=unit)
    _, apps = _issue(world, unit.code)
    with world.rt.uow() as uow, pytest.raises(InvalidInput) as exc:
        applications.correct_form(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            application_id=apps[0].id,
            changes={"name": "李四"},
        )
    assert "ID-4" in exc.value.detail


def test_id_1_register_person_refuses_invalid_number(world: World) -> None:
    sp = world.actor(OrgKind.SERVICE_POINT)
    number = next_id_number()
    bad = number[:17] + ("0" if number[-1] != "0" else "1")
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        register.register_person(
            uow, world.rt, actor=sp, data=register.PersonInput(id_number=bad, name="王五")
        )
    good = next_id_number()
    with world.rt.uow() as uow:
        register.register_person(
            uow, world.rt, actor=sp, data=register.PersonInput(id_number=good, name="王五")
        )
    with world.rt.uow() as uow, pytest.raises(AlreadyExists):
        register.register_person(
            uow, world.rt, actor=sp, data=register.PersonInput(id_number=good, name="王五")
        )
    with world.rt.uow() as uow:
        count = uow.session.scalar(
            select(func.count()).select_from(Person).where(register.has_id_number(good))
        )
    assert count == 1


def _statements_to_check(world: World, forms: int) -> int:
    """How many SQL statements checking a batch of ``forms`` forms costs."""
    unit = world.unit()
    for _ in range(forms):
        world.person(unit=unit)
    batch_id, apps = _issue(world, unit.code)
    sp = world.actor(OrgKind.SERVICE_POINT)
    for app in apps:
        _photo(world, app.id)
    with world.rt.uow() as uow:
        batches.return_batch(uow, world.rt, actor=sp, batch_id=batch_id)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    with world.rt.uow() as uow:
        connection = uow.session.connection()
        event.listen(connection, "before_cursor_execute", count)
        try:
            summary = batches.check_batch(uow, world.rt, actor=sp, batch_id=batch_id)
        finally:
            event.remove(connection, "before_cursor_execute", count)
    assert len(summary.accepted) == forms
    return statements


def test_a_2_checking_a_batch_is_set_based(world: World) -> None:
    """No per-row round trip on PostgreSQL: 40 forms cost as many statements as 4.

    SQLite cannot order a multi-row INSERT ... RETURNING, so SQLAlchemy inserts the
    new cards, transitions, audit rows and fees one statement each there (in-process
    calls, no network): at most four statements per extra form, and nothing else.
    """
    small, large = _statements_to_check(world, 4), _statements_to_check(world, 40)
    with world.rt.uow() as uow:
        dialect = uow.session.get_bind().dialect.name
    if dialect == "postgresql":
        assert large == small
    else:
        assert large - small <= 4 * (40 - 4)
