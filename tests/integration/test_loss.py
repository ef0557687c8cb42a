"""Loss reports, cancellation, replacement and change (L-*, R-*, F-*, ID-4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from sscard.applications import changes
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, IllegalTransition, InvalidInput, PolicyRefused
from sscard.db.engine import UnitOfWork
from sscard.jobs.sweeper import sweep
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number


def _outlet(world: World, bank: str = "ICBC") -> object:
    return world.actor(OrgKind.OUTLET, bank)


def _oral(world: World, card: Card, channel: str = "bank_phone") -> Card:
    with world.rt.uow() as uow:
        return loss.report_loss_oral(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=card.id,
            channel=channel,
            card_number=card.card_number,
        ).card


def _written(world: World, card: Card) -> Card:
    with world.rt.uow() as uow:
        return loss.report_loss_written(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=card.id
        )[0].card


def test_l_1_oral_report_lapses_after_five_natural_days(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    lost = _oral(world, card)
    assert lost.state == CardState.LOST_ORAL
    assert lost.oral_loss_lapses_at == world.rt.now() + timedelta(days=5)
    world.advance(days=4, hours=23)
    assert sweep(world.rt).counts["oral_report_lapsed"] == 0
    assert world.reload(card).state == CardState.LOST_ORAL
    world.advance(hours=1)
    assert sweep(world.rt).counts["oral_report_lapsed"] == 1
    resumed = world.reload(card)
    assert resumed.state == CardState.ACTIVE  # the card resumes where it was
    assert resumed.state_before_loss is None
    assert resumed.oral_loss_lapses_at is None
    assert sweep(world.rt).counts["oral_report_lapsed"] == 0  # exactly once


def test_l_1_written_report_within_five_days_stops_the_lapse(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    _oral(world, card)
    world.advance(days=3)
    written = _written(world, card)
    assert written.state == CardState.LOST_WRITTEN
    assert written.oral_loss_lapses_at is None
    world.advance(days=10)
    sweep(world.rt)
    assert world.reload(card).state == CardState.LOST_WRITTEN
    assert world.reload(card).state_before_loss == CardState.RECEIVED


def test_l_1_oral_report_only_through_policy_channels(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    with pytest.raises(PolicyRefused):
        _oral(world, card, channel="phone_12333")  # dongguan: bank phone and online banking
    with world.rt.uow() as uow, pytest.raises(Forbidden):
        loss.report_loss_oral(
            uow,
            world.rt,
            actor=world.actor(OrgKind.PHARMACY),
            card_id=card.id,
            channel="bank_phone",
        )


def test_l_2_written_report_is_effective_at_once_and_free(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        moved, fee = loss.report_loss_written(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=card.id
        )
    assert moved.card.state == CardState.LOST_WRITTEN
    assert moved.card.written_report_no
    assert moved.card.written_report_no.startswith("GS")
    assert (fee.amount_fen, fee.basis, fee.voucher_no) == (0, "loss_report", None)


def test_l_3_cancel_written_report_needs_the_report_form(world: World) -> None:
    card = _written(world, world.card(CardState.ACTIVE))
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(InvalidInput) as exc:
        loss.cancel_loss_report(
            uow, world.rt, actor=outlet, card_id=card.id, written_report_no="GS-wrong"
        )
    assert exc.value.field == "written_report_no"
    with world.rt.uow() as uow:
        back = loss.cancel_loss_report(
            uow, world.rt, actor=outlet, card_id=card.id, written_report_no=card.written_report_no
        ).card
    assert back.state == CardState.ACTIVE


def test_l_3_cancel_oral_report_resumes_the_card(world: World) -> None:
    card = _oral(world, world.card(CardState.RECEIVED))
    with world.rt.uow() as uow:
        back = loss.cancel_loss_report(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=card.id
        ).card
    assert back.state == CardState.RECEIVED


def test_l_3_no_cancellation_after_replacement(world: World) -> None:
    old = world.card(CardState.REPLACED)
    with world.rt.uow() as uow, pytest.raises(IllegalTransition) as exc:
        loss.cancel_loss_report(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=old.id,
            written_report_no=old.written_report_no,
        )
    assert exc.value.extra["current_state"] == "replaced"
    assert exc.value.extra["allowed"] == []
    assert "R-3" in exc.value.detail


def test_r_1_replacement_needs_written_report_and_costs_twenty_yuan(world: World) -> None:
    card = _oral(world, world.card(CardState.ACTIVE))
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        loss.replace_card(uow, world.rt, actor=outlet, card_id=card.id)
    assert exc.value.extra["reason"] == "written_report_required"
    _written(world, card)
    with world.rt.uow() as uow:
        done = loss.replace_card(uow, world.rt, actor=outlet, card_id=card.id)
    assert done.old.card.state == CardState.REPLACED
    assert done.old.card.replaced_by_card_id == done.new_card.id
    assert done.fee.amount_fen == 2000
    assert done.fee.basis == "replacement"
    assert done.fee.voucher_no
    assert done.fee.voucher_no.startswith("JF")
    assert done.new_card.state == CardState.ORDERED
    assert done.new_card.ready_on == world.working_days_after(world.rt.today(), 30)
    # Pickup with ID and form, activated at pickup.
    world.goto(done.new_card.ready_on)
    new = world.produce(done.new_card)
    with world.rt.uow() as uow:
        moved = cards.pickup(
            uow, world.rt, actor=outlet, card_id=new.id, by="holder", activate=True
        )
    assert moved.card.state == CardState.ACTIVE


def test_r_2_cards_in_loss_or_change_are_suspended(world: World) -> None:
    for state in (CardState.LOST_ORAL, CardState.LOST_WRITTEN):
        card = world.card(state)
        with world.rt.uow() as uow, pytest.raises(IllegalTransition):
            cards.activate(
                uow,
                world.rt,
                actor=world.actor(OrgKind.HOSPITAL),
                card_id=card.id,
                channel="hospital",
                card_number=card.card_number,
            )


def test_r_3_replaced_card_is_refused_everywhere(world: World) -> None:
    old = world.card(CardState.REPLACED)
    attempts: list[Callable[[UnitOfWork], object]] = [
        lambda uow: cards.activate(
            uow,
            world.rt,
            actor=world.actor(OrgKind.HOSPITAL),
            card_id=old.id,
            channel="hospital",
            card_number=old.card_number,
        ),
        lambda uow: loss.report_loss_oral(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=old.id, channel="bank_phone"
        ),
        lambda uow: loss.report_loss_written(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=old.id
        ),
        lambda uow: loss.replace_card(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=old.id
        ),
        lambda uow: loss.change_card(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), card_id=old.id, reason="chip_damaged"
        ),
    ]
    for attempt in attempts:
        with world.rt.uow() as uow, pytest.raises(IllegalTransition) as exc:
            attempt(uow)
        assert exc.value.extra["current_state"] == "replaced"
    assert world.reload(old).state == CardState.REPLACED


def test_r_4_change_for_damage_costs_and_destroys_old_card(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        done = loss.change_card(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=card.id,
            reason="surface_damaged",
        )
    assert done.old.card.state == CardState.DESTROYED
    assert done.old.transitions[0].reason_code == "change:surface_damaged"
    assert (done.fee.amount_fen, done.fee.basis) == (2000, "change")
    assert done.new_card.bank_code == card.bank_code


def test_r_4_photo_change_needs_new_receipt(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    studio = world.org(OrgKind.PHOTO_STUDIO)
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        loss.change_card(uow, world.rt, actor=outlet, card_id=card.id, reason="photo_changed")
    with world.rt.uow() as uow:
        done = loss.change_card(
            uow,
            world.rt,
            actor=outlet,
            card_id=card.id,
            reason="photo_changed",
            photo_receipt_no="XP-9",
            studio_code=studio.code,
        )
    assert done.new_card.state == CardState.ORDERED


def test_id_4_card_change_follows_approved_change_request(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        loss.change_card(
            uow, world.rt, actor=outlet, card_id=card.id, reason="personal_data_changed"
        )
    assert exc.value.extra["reason"] == "no_approved_change_request"
    sp, center = world.actor(OrgKind.SERVICE_POINT), world.actor(OrgKind.CENTER, role="supervisor")
    req = world.change_request(
        card.person_id, field_name="name", new_value="李新名", document="证明"
    )
    for who, action in ((sp, "submit"), (center, "approve")):
        with world.rt.uow() as uow:
            changes.decide(uow, world.rt, actor=who, request_id=req.id, action=action)
    with world.rt.uow() as uow:
        done = loss.change_card(
            uow, world.rt, actor=outlet, card_id=card.id, reason="personal_data_changed"
        )
    assert done.new_card.state == CardState.ORDERED
    with world.rt.uow() as uow:
        fresh = uow.session.get(type(req), req.id)
        person = uow.session.get(Person, card.person_id)
    assert fresh is not None
    assert fresh.card_change_done
    assert person is not None
    assert person.name == "李新名"


def test_f_2_quality_problem_within_validity_is_free(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        done = loss.change_card(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=card.id,
            reason="quality_problem",
        )
    assert (done.fee.amount_fen, done.fee.basis, done.fee.voucher_no) == (
        0,
        "quality_problem_free",
        None,
    )


def test_f_2_expired_card_is_no_quality_problem_and_pays(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    assert card.valid_until is not None
    world.goto(card.valid_until + timedelta(days=2))
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(InvalidInput):
        loss.change_card(uow, world.rt, actor=outlet, card_id=card.id, reason="quality_problem")
    with world.rt.uow() as uow:
        done = loss.change_card(uow, world.rt, actor=outlet, card_id=card.id, reason="expired")
    assert done.fee.amount_fen == 2000


@pytest.mark.parametrize("policy_name", ["henan"])
def test_a_5_henan_lets_an_agent_report_a_loss(world: World) -> None:
    from sscard.access.model import Agent, AgentDocument

    card = world.card(CardState.ACTIVE, bank="ZYB")
    agent = Agent("李四", next_id_number(), AgentDocument.POWER_OF_ATTORNEY)
    with world.rt.uow() as uow:
        moved, _ = loss.report_loss_written(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET, "ZYB"), card_id=card.id, agent=agent
        )
    assert moved.card.state == CardState.LOST_WRITTEN


def test_q_1_card_history_is_a_query_of_its_transitions(world: World) -> None:
    card = world.card(CardState.LOST_WRITTEN)
    with world.rt.uow() as uow:
        history = loss.history(uow.session, card.id)
    assert [(t.from_state, t.to_state) for t in history] == [
        ("none", "ordered"),
        ("ordered", "at_outlet"),
        ("at_outlet", "received"),
        ("received", "active"),
        ("active", "lost_written"),
    ]
    assert all(t.occurred_at is not None and t.channel for t in history)


def test_state_change_and_audit_are_one_transaction(world: World) -> None:
    """Pickup succeeds, then activation is refused: nothing of either is kept."""
    from sscard.access.model import Agent, AgentDocument
    from sscard.audit.tables import AuditRecord
    from sscard.cards.tables import CardTransition

    card = world.card(CardState.AT_OUTLET)

    def counts() -> tuple[int, int]:
        with world.rt.uow() as uow:
            return (
                len(list(uow.session.scalars(select(CardTransition.id)))),
                len(list(uow.session.scalars(select(AuditRecord.id)))),
            )

    before = counts()
    agent = Agent("李四", next_id_number(), AgentDocument.POWER_OF_ATTORNEY)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused):
        # Dongguan lets an agent pick up, but activation is in person only.
        cards.pickup(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=card.id,
            by="holder",
            agent=agent,
            activate=True,
        )
    assert counts() == before
    assert world.reload(card).state == CardState.AT_OUTLET
