"""Deadlines that run by themselves: D-2, V-4, V-5, L-1 and the overdue flags."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from sscard.audit.tables import AuditRecord
from sscard.bank import service as bank
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import CardTransition
from sscard.core.errors import PolicyRefused
from sscard.jobs.sweeper import sweep
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World


def _transitions(world: World, card_id: int, action: str) -> int:
    with world.rt.uow() as uow:
        return int(
            uow.session.scalar(
                select(func.count())
                .select_from(CardTransition)
                .where(CardTransition.card_id == card_id, CardTransition.action == action)
            )
            or 0
        )


def test_d_2_unclaimed_card_destroyed_after_180_days(world: World) -> None:
    card = world.card(CardState.AT_OUTLET)
    world.advance(days=179)
    assert sweep(world.rt).counts["unclaimed_destroyed"] == 0
    world.advance(days=1, hours=1)
    assert sweep(world.rt).counts["unclaimed_destroyed"] == 1
    gone = world.reload(card)
    assert gone.state == CardState.DESTROYED
    with world.rt.uow() as uow:
        t = uow.session.scalars(
            select(CardTransition)
            .where(CardTransition.card_id == card.id)
            .order_by(CardTransition.id.desc())
        ).first()
    assert t is not None
    assert (t.action, t.reason_code, t.channel) == (
        "destroy_unclaimed",
        "unclaimed_180_days",
        "system",
    )


def test_v_4_old_medical_card_restricted_after_half_a_year(world: World) -> None:
    person = world.person(old_card=True)
    card = world.card(CardState.RECEIVED, person=person)
    world.advance(days=150)
    assert sweep(world.rt).counts["old_card_restricted"] == 0
    world.advance(days=40)
    assert sweep(world.rt).counts["old_card_restricted"] == 1
    with world.rt.uow() as uow:
        fresh = uow.session.get(Person, person.id)
        audits = uow.session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(
                AuditRecord.action == "person.old_medical_card_restricted",
                AuditRecord.person_id == person.id,
            )
        )
    assert fresh is not None
    assert fresh.old_medical_card_state == "restricted"
    assert audits == 1
    assert sweep(world.rt).counts["old_card_restricted"] == 0
    assert world.reload(card).state == CardState.RECEIVED


def test_v_4_activated_card_keeps_old_card_unrestricted(world: World) -> None:
    person = world.person(old_card=True)
    world.card(CardState.ACTIVE, person=person)
    world.advance(days=200)
    assert sweep(world.rt).counts["old_card_restricted"] == 0


def test_v_5_financial_not_activated_in_300_days_reports_lost(world: World) -> None:
    card = world.card(CardState.ACTIVE)  # social side active, financial not
    world.advance(days=299)
    assert sweep(world.rt).counts["auto_reported_lost"] == 0
    world.advance(days=1, hours=1)
    assert sweep(world.rt).counts["auto_reported_lost"] == 1
    lost = world.reload(card)
    assert lost.state == CardState.LOST_AUTO
    assert lost.state_before_loss == CardState.ACTIVE
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as exc:
        loss.cancel_loss_report(uow, world.rt, actor=outlet, card_id=card.id)
    assert exc.value.extra["reason"] == "financial_not_activated"
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
    assert person is not None
    with world.rt.uow() as uow:
        bank.activate_financial(
            uow,
            world.rt,
            actor=outlet,
            bank_card_number=card.bank_card_number or "",
            id_number=person.id_number,
            financial_password="730416",
        )
    fin = world.reload(card)
    assert fin.financial_activated_at is not None
    assert fin.state == CardState.LOST_AUTO  # the holder cancels the report
    with world.rt.uow() as uow:
        back = loss.cancel_loss_report(uow, world.rt, actor=outlet, card_id=card.id).card
    assert back.state == CardState.ACTIVE
    world.advance(days=400)
    assert sweep(world.rt).counts["auto_reported_lost"] == 0


def test_v_5_financially_activated_card_is_never_auto_reported(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
    assert person is not None
    with world.rt.uow() as uow:
        bank.activate_financial(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            bank_card_number=card.bank_card_number or "",
            id_number=person.id_number,
            financial_password="730416",
        )
    world.advance(days=301)
    assert sweep(world.rt).counts["auto_reported_lost"] == 0


def test_l_1_sweeper_works_in_batches_exactly_once(world: World) -> None:
    lost = world.cards(5, CardState.LOST_ORAL)
    world.advance(days=6)
    report = sweep(world.rt, batch_size=2)
    assert report.counts["oral_report_lapsed"] == 5
    assert all(_transitions(world, c.id, "oral_report_lapse") == 1 for c in lost)
    assert sweep(world.rt, batch_size=2).counts["oral_report_lapsed"] == 0


def test_a_2_handout_overdue_flagged_once(world: World) -> None:
    unit = world.unit()
    world.person(unit=unit)
    batch, _ = world.issue_unit_batch(unit, stage="s")
    world.advance(days=30)
    assert sweep(world.rt).counts["form_return_overdue"] == 1  # returned too late
    assert sweep(world.rt).counts["form_return_overdue"] == 0
    card = world.accept_unit_batch(batch, unit)
    with world.rt.uow() as uow:
        card = cards.pickup(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=card.id,
            by="unit_administrator",
        ).card
    assert card.handout_due is not None
    world.goto(card.handout_due + timedelta(days=1))
    assert sweep(world.rt).counts["handout_overdue"] == 1
    assert sweep(world.rt).counts["handout_overdue"] == 0
    with world.rt.uow() as uow:
        late = cards.hand_out(uow, world.rt, actor=world.unit_actor(unit), card_id=card.id)
    assert late.transitions[0].reason_code == "late"


def test_idempotency_keys_are_forgotten_after_a_day(world: World) -> None:
    from sscard.db.idempotency import Answer, IdempotencyRecord, remember

    with world.rt.uow() as uow:
        remember(
            uow.session,
            staff_id=1,
            key="k",
            fingerprint="f",
            answer=Answer(200, {}),
            now=world.rt.now(),
        )
        uow.commit()
    world.advance(hours=23)
    assert sweep(world.rt).counts["idempotency_keys_pruned"] == 0
    world.advance(hours=2)
    assert sweep(world.rt).counts["idempotency_keys_pruned"] == 1
    with world.rt.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_v_4_audit_names_only_persons_whose_old_card_was_restricted(world: World) -> None:
    without_old = world.person(old_card=False)
    world.card(CardState.RECEIVED, person=without_old)
    world.advance(days=200)
    assert sweep(world.rt).counts["old_card_restricted"] == 1  # the deadline is processed
    with world.rt.uow() as uow:
        audits = uow.session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "person.old_medical_card_restricted")
        )
    assert audits == 0


def test_l_1_lapse_by_the_sweeper_is_recorded_like_a_move_at_the_counter(world: World) -> None:
    """One writer: a lapsed report leaves the same traces as a cancelled one (L-1, L-3)."""
    swept, cancelled = world.card(CardState.ACTIVE), world.card(CardState.ACTIVE)
    for card in (swept, cancelled):
        with world.rt.uow() as uow:
            loss.report_loss_oral(
                uow,
                world.rt,
                actor=world.actor(OrgKind.OUTLET, "ICBC"),
                card_id=card.id,
                channel="bank_phone",
            )
    with world.rt.uow() as uow:
        loss.cancel_loss_report(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET, "ICBC"), card_id=cancelled.id
        )
    world.advance(days=6)
    assert sweep(world.rt).counts["oral_report_lapsed"] == 1
    for card in (swept, cancelled):
        after = world.reload(card)
        assert after.state == CardState.ACTIVE
        assert (after.state_before_loss, after.loss_reported_at, after.oral_loss_lapses_at) == (
            None,
            None,
            None,
        )
    with world.rt.uow() as uow:
        s = uow.session
        last = s.scalars(
            select(CardTransition)
            .where(CardTransition.card_id == swept.id)
            .order_by(CardTransition.id.desc())
        ).first()
        audited = s.scalars(
            select(AuditRecord).where(
                AuditRecord.subject_type == "card",
                AuditRecord.subject_id == swept.id,
                AuditRecord.action == "card.oral_report_lapse",
            )
        ).one()
    assert last is not None
    assert (last.from_state, last.to_state, last.channel) == ("lost_oral", "active", "system")
    assert audited.detail == {
        "from": "lost_oral",
        "to": "active",
        "reason": "oral_report_lapsed",
        "transition_id": last.id,
    }


@pytest.fixture
def card_updates(engine: Engine) -> Iterator[list[str]]:
    """The UPDATE statements sent to the cards table while the test runs."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE CARDS", "WITH")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    yield seen
    event.remove(engine, "before_cursor_execute", listen)


def test_l_1_lapse_of_a_mixed_batch_is_one_update(world: World, card_updates: list[str]) -> None:
    """Cards going back to different states (L-1: active or received) move in one UPDATE."""
    cards = [world.card(CardState.ACTIVE) for _ in range(3)]
    cards += [world.card(CardState.RECEIVED) for _ in range(3)]
    for card in cards:
        with world.rt.uow() as uow:
            loss.report_loss_oral(
                uow,
                world.rt,
                actor=world.actor(OrgKind.OUTLET, "ICBC"),
                card_id=card.id,
                channel="bank_phone",
            )
    world.advance(days=6)
    card_updates.clear()
    assert sweep(world.rt).counts["oral_report_lapsed"] == 6
    assert len(card_updates) == 1
    assert [world.reload(c).state for c in cards] == ["active"] * 3 + ["received"] * 3
    assert {_transitions(world, c.id, "oral_report_lapse") for c in cards} == {1}
