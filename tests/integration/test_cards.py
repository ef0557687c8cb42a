"""Production, pickup, hand-out and activation (A-2 steps 7-8, C-2, D-1, V-*, S-1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sscard.access.model import Agent, AgentDocument
from sscard.applications.model import ApplicationKind
from sscard.applications.service import new_accepted_application
from sscard.bank import service as bank
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import Card, CardTransition
from sscard.core.errors import (
    AlreadyExists,
    DeadlineNotReached,
    Forbidden,
    IllegalTransition,
    InvalidIdentifier,
    InvalidInput,
    NotFound,
    PolicyRefused,
)
from sscard.core.ids import luhn_complete
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number


def _activate(
    world: World,
    card: Card,
    kind: OrgKind,
    channel: str,
    *,
    bank: str | None = None,
    agent: Agent | None = None,
    old_medical_card_no: str | None = None,
) -> Card:
    with world.rt.uow() as uow:
        return cards.activate(
            uow,
            world.rt,
            actor=world.actor(kind, bank),
            card_id=card.id,
            channel=channel,
            agent=agent,
            old_medical_card_no=old_medical_card_no,
            card_number=card.card_number,
        ).card


def test_c_2_production_records_numbers_and_ten_year_validity(world: World) -> None:
    card = world.card(CardState.AT_OUTLET)
    assert card.card_number
    assert card.serial
    assert card.bank_card_number
    produced = card.produced_at
    assert produced is not None
    local = produced.astimezone(world.rt.tz).date()
    assert card.valid_until == local.replace(year=local.year + 10) - timedelta(days=1)


def test_c_2_production_refuses_bank_card_outside_bin_and_duplicates(world: World) -> None:
    first = world.card(CardState.AT_OUTLET)
    second = world.ordered_card()
    bank = world.actor(OrgKind.BANK, "ICBC")
    outlet = world.actor(OrgKind.OUTLET, "ICBC")
    with world.rt.uow() as uow, pytest.raises(InvalidIdentifier) as exc:
        cards.record_production(
            uow,
            world.rt,
            actor=bank,
            card_id=second.id,
            card_number="B00000001",
            serial="SNX0000001",
            bank_card_number=luhn_complete("622848" + "0" * 12),
            outlet_code=outlet.org_code,
        )
    assert exc.value.extra["reason"] == "wrong_bin"
    with world.rt.uow() as uow, pytest.raises(AlreadyExists):
        cards.record_production(
            uow,
            world.rt,
            actor=bank,
            card_id=second.id,
            card_number=first.card_number or "",
            serial="SNX0000002",
            bank_card_number=luhn_complete("622202" + "9" * 12),
            outlet_code=outlet.org_code,
        )
    assert world.reload(second).state == CardState.ORDERED


def test_s_1_bank_produces_only_its_own_cards(world: World) -> None:
    card = world.ordered_card(bank="ICBC")
    other = world.actor(OrgKind.BANK, "BOC")
    with world.rt.uow() as uow, pytest.raises(NotFound):
        cards.record_production(
            uow,
            world.rt,
            actor=other,
            card_id=card.id,
            card_number="B00000001",
            serial="SNX0000001",
            bank_card_number=luhn_complete("621790" + "0" * 12),
            outlet_code="x",
        )


def test_a_2_pickup_only_after_thirty_working_days(world: World) -> None:
    card = world.ordered_card()
    ready = card.ready_on
    assert ready == world.working_days_after(world.rt.today(), 30)
    card = world.produce(card)  # produced early, still not ready for pickup
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(DeadlineNotReached) as exc:
        cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder")
    assert exc.value.extra["ready_on"] == ready.isoformat()
    world.goto(ready)
    with world.rt.uow() as uow:
        moved = cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder")
    assert moved.card.state == CardState.RECEIVED


def test_a_2_unit_picks_up_and_hands_out_within_five_working_days(world: World) -> None:
    made = world.unit_card()
    card, unit = made.card, made.unit
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        cards.pickup(
            uow, world.rt, actor=outlet, card_id=card.id, by="unit_administrator", activate=True
        )
    with world.rt.uow() as uow:
        picked = cards.pickup(
            uow, world.rt, actor=outlet, card_id=card.id, by="unit_administrator"
        ).card
    assert picked.state == CardState.WITH_UNIT
    assert picked.handout_due == world.working_days_after(world.rt.today(), 5)
    stranger = world.unit()
    with world.rt.uow() as uow, pytest.raises(NotFound):
        cards.hand_out(uow, world.rt, actor=world.unit_actor(stranger), card_id=card.id)
    with world.rt.uow() as uow:
        moved = cards.hand_out(
            uow,
            world.rt,
            actor=world.unit_actor(unit),
            card_id=card.id,
        )
    assert moved.card.state == CardState.RECEIVED
    assert moved.card.received_at is not None
    assert moved.transitions[0].reason_code is None  # on time


def test_a_5_pickup_by_agent_needs_power_of_attorney(world: World) -> None:
    card = world.card(CardState.AT_OUTLET)
    outlet = world.actor(OrgKind.OUTLET)
    wrong = Agent("李四", next_id_number(), AgentDocument.UNIT_CERTIFICATE)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused):
        cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder", agent=wrong)
    agent = Agent("李四", next_id_number(), AgentDocument.POWER_OF_ATTORNEY, "WT-1")
    with world.rt.uow() as uow:
        moved = cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder", agent=agent)
    recorded = moved.transitions[0].agent
    assert recorded is not None
    assert recorded["document"] == "power_of_attorney"
    assert agent.id_number not in str(recorded)  # the agent's ID is stored masked


def test_a_5_dongguan_refuses_activation_by_agent(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    agent = Agent("李四", next_id_number(), AgentDocument.POWER_OF_ATTORNEY)
    with pytest.raises(PolicyRefused) as exc:
        _activate(world, card, OrgKind.OUTLET, "outlet", agent=agent)
    assert exc.value.extra["reason"] == "in_person_only"
    assert world.reload(card).state == CardState.RECEIVED


def test_d_1_undeliverable_card_returns_to_outlet_then_holder_collects(world: World) -> None:
    card = world.unit_card().card
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow:
        cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="unit_administrator")
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        cards.return_undeliverable(uow, world.rt, actor=outlet, card_id=card.id, reason="lost_it")
    with world.rt.uow() as uow:
        back = cards.return_undeliverable(
            uow, world.rt, actor=outlet, card_id=card.id, reason="left_unit"
        ).card
    assert back.state == CardState.AT_OUTLET
    assert back.at_outlet_since is not None
    with world.rt.uow() as uow:
        held = cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder").card
    assert held.state == CardState.RECEIVED


def test_v_1_outlet_activation_records_channel_place_and_actor(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow:
        moved = cards.activate(uow, world.rt, actor=outlet, card_id=card.id, channel="outlet")
    t = moved.transitions[0]
    assert (t.from_state, t.to_state, t.channel) == ("received", "active", "outlet")
    assert (t.place_org_id, t.actor_staff_id) == (outlet.org_id, outlet.staff_id)
    assert moved.card.activation_channel == "outlet"


def test_v_1_outlet_of_another_bank_cannot_activate(world: World) -> None:
    card = world.card(CardState.RECEIVED, bank="ICBC")
    with pytest.raises(NotFound):
        _activate(world, card, OrgKind.OUTLET, "outlet", bank="BOC")


def test_v_1_hospital_activates_on_first_registration(world: World) -> None:
    card = _activate(world, world.card(CardState.RECEIVED), OrgKind.HOSPITAL, "hospital")
    assert card.state == CardState.ACTIVE
    assert card.activation_channel == "hospital"


def test_v_1_pharmacy_reads_old_medical_card_first(world: World) -> None:
    person = world.person(old_card=True)
    card = world.card(CardState.RECEIVED, person=person)
    with pytest.raises(InvalidInput) as exc:
        _activate(world, card, OrgKind.PHARMACY, "pharmacy")
    assert exc.value.field == "old_medical_card_no"
    active = _activate(world, card, OrgKind.PHARMACY, "pharmacy", old_medical_card_no="YB000000001")
    assert active.state == CardState.ACTIVE
    with world.rt.uow() as uow:
        fresh = uow.session.get(Person, person.id)
    assert fresh is not None
    assert fresh.old_medical_card_state == "closed"


def test_v_1_channel_must_belong_to_the_organization(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    with pytest.raises(Forbidden):
        _activate(world, card, OrgKind.HOSPITAL, "outlet")
    with pytest.raises(Forbidden) as exc:
        _activate(world, card, OrgKind.OUTLET, "bank_financial")
    assert "financial-activations" in exc.value.detail


def test_v_1_dongguan_refuses_phone_and_online_activation(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    for kind, channel in (
        (OrgKind.HOTLINE, "phone_12333"),
        (OrgKind.CENTER, "online"),
        (OrgKind.BUREAU_WINDOW, "bureau_window"),
    ):
        with pytest.raises(PolicyRefused) as exc:
            _activate(world, card, kind, channel)
        assert exc.value.extra["reason"] == "channel_not_allowed"


@pytest.mark.parametrize("policy_name", ["henan"])
@pytest.mark.parametrize(
    ("kind", "channel"),
    [
        (OrgKind.HOTLINE, "phone_12333"),
        (OrgKind.CENTER, "online"),
        (OrgKind.BUREAU_WINDOW, "bureau_window"),
        (OrgKind.GRASSROOTS, "grassroots"),
    ],
)
def test_v_1_henan_activates_by_phone_online_window_and_platform(
    world: World, kind: OrgKind, channel: str
) -> None:
    card = world.card(CardState.RECEIVED, bank="ZYB")
    assert _activate(world, card, kind, channel).activation_channel == channel


def test_v_1_bank_financial_activation_activates_social_application(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
    assert person is not None
    outlet = world.actor(OrgKind.OUTLET, "ICBC")
    with world.rt.uow() as uow, pytest.raises(InvalidInput) as exc:
        bank.activate_financial(
            uow,
            world.rt,
            actor=outlet,
            bank_card_number=card.bank_card_number or "",
            id_number=next_id_number(),
            financial_password="730416",
        )
    assert exc.value.field == "id_number"
    with world.rt.uow() as uow:
        bank.activate_financial(
            uow,
            world.rt,
            actor=outlet,
            bank_card_number=card.bank_card_number or "",
            id_number=person.id_number,
            financial_password="730416",
        )
    active = world.reload(card)
    assert active.state == CardState.ACTIVE
    assert active.activation_channel == "bank_financial"
    assert active.financial_activated_at is not None
    with world.rt.uow() as uow:
        history = loss.history(uow.session, card.id)
    assert history[-1].action == "financial_activate"
    assert history[-1].channel == "bank_financial"


def test_v_2_received_card_is_not_usable_until_activated(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    with world.rt.uow() as uow, pytest.raises(IllegalTransition) as exc:
        loss.replace_card(uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=card.id)
    assert exc.value.extra["current_state"] == "received"
    assert "activate" in exc.value.extra["allowed"]


def _renewal_picked_up(world: World, person: Person, old: Card, bank: str) -> cards.Moved:
    """A renewal card of ``bank`` for ``person``, picked up and activated at the outlet
    (the old card stays live until then)."""
    outlet = world.actor(OrgKind.OUTLET, bank)
    with world.rt.uow() as uow:
        holder = uow.session.get(Person, person.id)
        assert holder is not None
        app = new_accepted_application(
            uow.session,
            world.rt,
            holder,
            kind=ApplicationKind.CHANGE,
            bank_code=bank,
            actor=outlet,
            replaces_card_id=old.id,
        )
        new = cards.order_card(
            uow.session, world.rt, app, actor=outlet, unit_org_id=None, reason_code="renewal"
        )
        uow.commit()
    world.goto(new.ready_on)
    new = world.produce(new)
    with world.rt.uow() as uow:
        return cards.pickup(uow, world.rt, actor=outlet, card_id=new.id, by="holder", activate=True)


def test_v_3_old_card_of_same_bank_destroyed_other_bank_superseded(world: World) -> None:
    person = world.person()
    old_same = world.card(CardState.ACTIVE, person=person, bank="ICBC")
    moved = _renewal_picked_up(world, person, old_same, "ICBC")
    assert [t.action for t in moved.transitions] == [
        "pickup_by_holder",
        "activate",
        "destroy_old_same_bank",
    ]
    assert world.reload(old_same).state == CardState.DESTROYED


def test_v_3_old_card_of_other_bank_is_superseded(world: World) -> None:
    person = world.person()
    old = world.card(CardState.ACTIVE, person=person, bank="BOC")
    _renewal_picked_up(world, person, old, "ICBC")
    assert world.reload(old).state == CardState.SUPERSEDED


def test_v_6_activation_makes_the_card_usable_again(world: World) -> None:
    """V-6's medical account lives in the accounts module; here: the card side."""
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        history = list(
            uow.session.scalars(
                select(CardTransition)
                .where(CardTransition.card_id == card.id)
                .order_by(CardTransition.id)
            )
        )
    assert [t.action for t in history] == ["order", "produce", "pickup_by_holder", "activate"]
    assert card.state == CardState.ACTIVE
    assert card.activated_at is not None


def test_expired_card_cannot_be_activated(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    assert card.valid_until is not None
    world.goto(card.valid_until + timedelta(days=1))
    with pytest.raises(PolicyRefused) as exc:
        _activate(world, card, OrgKind.OUTLET, "outlet")
    assert exc.value.extra["reason"] == "card_expired"
