"""S-1, A-5 on both backends: record scopes in the use cases and in SQL list filters."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sscard.access.model import SYSTEM, Actor, Agent, AgentDocument
from sscard.access.scoping import Target, visible
from sscard.applications.tables import Application, Batch
from sscard.audit.tables import AuditRecord
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, NotFound
from sscard.register.model import OrgKind
from sscard.register.tables import Organization, Person
from tests.factories import World, next_id_number

ID_OF = {
    "persons": Person.id,
    "cards": Card.id,
    "applications": Application.id,
    "batches": Batch.id,
}


def _ids(world: World, actor: Actor, target: Target, operation: str) -> set[int]:
    with world.rt.uow() as uow:
        rows = uow.session.scalars(select(ID_OF[target]).where(visible(actor, operation, target)))
        return set(rows)


def _joins(world: World, person: Person, unit: Organization) -> None:
    """The person (who applied on their own) is later employed by ``unit``."""
    with world.rt.uow() as uow:
        row = uow.session.get(Person, person.id)
        assert row is not None
        row.unit_org_id = unit.id
        uow.commit()


def test_s_1_list_filters_keep_each_party_to_its_own_records(world: World) -> None:
    mine, theirs = world.unit(bank="ICBC"), world.unit(bank="BOC")
    colleague, stranger = world.person(), world.person()
    icbc_card = world.card(CardState.RECEIVED, person=colleague, bank="ICBC")
    boc_card = world.card(CardState.RECEIVED, person=stranger, bank="BOC")
    _joins(world, colleague, mine)
    _joins(world, stranger, theirs)
    unit = world.staff_of(mine)
    icbc = world.actor(OrgKind.OUTLET, "ICBC")
    holder = world.cardholder(colleague)
    people = {colleague.id, stranger.id}
    both = {icbc_card.id, boc_card.id}

    assert _ids(world, unit, "persons", "persons.read") & people == {colleague.id}
    assert _ids(world, icbc, "persons", "persons.read") & people == {colleague.id}
    assert _ids(world, holder, "persons", "persons.read") == {colleague.id}
    assert _ids(world, world.actor(OrgKind.CENTER), "persons", "persons.read") >= people

    assert _ids(world, icbc, "cards", "cards.read") & both == {icbc_card.id}
    assert _ids(world, world.actor(OrgKind.OUTLET, "BOC"), "cards", "cards.read") & both == {
        boc_card.id
    }
    assert _ids(world, holder, "cards", "cards.read") == {icbc_card.id}
    assert _ids(world, SYSTEM, "cards", "cards.read") >= both

    forms = _ids(world, holder, "applications", "applications.read")
    assert forms == {icbc_card.application_id}
    assert _ids(world, icbc, "applications", "applications.read") & {
        icbc_card.application_id,
        boc_card.application_id,
    } == {icbc_card.application_id}
    with pytest.raises(Forbidden):  # a unit's bundle of forms is never a cardholder's
        _ids(world, holder, "batches", "batches.read")


def test_s_1_unit_lists_forms_and_cards_of_its_own_people_only(world: World) -> None:
    mine, theirs = world.unit(), world.unit()
    colleague, stranger = world.person(), world.person()
    forms = {world.ordered_card(person=p).application_id: p for p in (colleague, stranger)}
    _joins(world, colleague, mine)
    _joins(world, stranger, theirs)
    unit = world.staff_of(mine)
    seen = _ids(world, unit, "applications", "applications.read") & set(forms)
    assert [forms[i].id for i in seen] == [colleague.id]


def test_s_1_presented_scope_never_lists(world: World) -> None:
    with pytest.raises(Forbidden) as exc:
        _ids(world, world.actor(OrgKind.PHARMACY), "cards", "cards.check")
    assert exc.value.extra["reason"] == "presented_only"
    with pytest.raises(Forbidden):
        _ids(world, world.actor(OrgKind.PHOTO_STUDIO), "persons", "persons.read")


def test_s_1_cardholder_reports_own_card_lost_orally_l_1(world: World) -> None:
    me, other = world.person(), world.person()
    mine = world.card(CardState.ACTIVE, person=me)
    theirs = world.card(CardState.ACTIVE, person=other)
    holder = world.cardholder(me)
    with world.rt.uow() as uow:
        moved = loss.report_loss_oral(
            uow, world.rt, actor=holder, card_id=mine.id, channel="online_banking"
        )
    assert moved.card.state == CardState.LOST_ORAL
    with world.rt.uow() as uow:
        audit = uow.session.scalars(
            select(AuditRecord)
            .where(AuditRecord.subject_type == "card", AuditRecord.subject_id == mine.id)
            .order_by(AuditRecord.id.desc())
        ).first()
    assert audit is not None
    assert audit.actor_person_id == me.id
    assert audit.actor_staff_id is None
    with world.rt.uow() as uow, pytest.raises(NotFound):
        loss.report_loss_oral(
            uow, world.rt, actor=holder, card_id=theirs.id, channel="online_banking"
        )
    with world.rt.uow() as uow, pytest.raises(Forbidden):
        loss.report_loss_oral(uow, world.rt, actor=holder, card_id=mine.id, channel="bank_phone")
    with world.rt.uow() as uow, pytest.raises(Forbidden):
        loss.report_loss_written(uow, world.rt, actor=holder, card_id=mine.id)
    assert world.reload(theirs).state == CardState.ACTIVE


class TestOnlineActivation:
    @pytest.fixture
    def policy_name(self) -> str:
        return "henan"  # V-1: Henan activates online too

    def test_s_1_v_1_cardholder_activates_own_card_online(self, world: World) -> None:
        me, other = world.person(), world.person()
        mine = world.card(CardState.RECEIVED, person=me)
        theirs = world.card(CardState.RECEIVED, person=other)
        holder = world.cardholder(me)
        with world.rt.uow() as uow:
            moved = cards.activate(uow, world.rt, actor=holder, card_id=mine.id, channel="online")
        assert moved.card.state == CardState.ACTIVE
        assert moved.card.activation_channel == "online"
        with world.rt.uow() as uow, pytest.raises(NotFound):
            cards.activate(uow, world.rt, actor=holder, card_id=theirs.id, channel="online")
        with world.rt.uow() as uow, pytest.raises(Forbidden):
            cards.activate(uow, world.rt, actor=holder, card_id=theirs.id, channel="outlet")


def test_s_1_a_5_an_agent_never_widens_the_scope_of_who_acts(world: World) -> None:
    card = world.ordered_card(bank="ICBC")
    world.goto(card.ready_on)
    card = world.produce(card)
    agent = Agent("李四", next_id_number(), AgentDocument.POWER_OF_ATTORNEY, "WT-1")
    with world.rt.uow() as uow, pytest.raises(NotFound):
        cards.pickup(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET, "BOC"),
            card_id=card.id,
            by="holder",
            agent=agent,
        )
    with world.rt.uow() as uow:
        moved = cards.pickup(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET, "ICBC"),
            card_id=card.id,
            by="holder",
            agent=agent,
        )
    assert moved.card.state == CardState.RECEIVED


def test_s_1_roles_gate_what_the_center_decides(world: World) -> None:
    from sscard.applications import changes

    person = world.person()
    sp = world.actor(OrgKind.SERVICE_POINT)
    req = world.change_request(
        person.id, field_name="name", new_value="李四", document="公安机关证明"
    )
    with world.rt.uow() as uow:
        changes.decide(uow, world.rt, actor=sp, request_id=req.id, action="submit")
    with world.rt.uow() as uow, pytest.raises(Forbidden) as exc:
        changes.decide(
            uow, world.rt, actor=world.actor(OrgKind.CENTER), request_id=req.id, action="approve"
        )
    assert exc.value.extra["reason"] == "role"
    for role in ("supervisor", "administrator"):
        assert world.actor(OrgKind.CENTER, role=role).role == role
    with world.rt.uow() as uow:
        done = changes.decide(
            uow,
            world.rt,
            actor=world.actor(OrgKind.CENTER, role="administrator"),
            request_id=req.id,
            action="approve",
        )
    assert done.state == "approved"
