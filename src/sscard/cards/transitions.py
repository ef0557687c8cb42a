"""Moving a card: the one place that changes a card's state and records it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, Agent
from sscard.audit.service import record, record_many
from sscard.cards.model import LOST, Action, CardState, next_state
from sscard.cards.tables import Card, CardTransition
from sscard.core.errors import NotFound
from sscard.db.engine import is_postgres
from sscard.messages import BUS, CardMove, CardsMoved, Delivery
from sscard.runtime import Runtime

OnActivation = Callable[[Session, Card], None]
"""Runs in an activation's transaction once the card is active."""


@dataclass(frozen=True)
class Moved:
    """A card after a use case, with the transitions it made."""

    card: Card
    transitions: list[CardTransition]


def load_card(session: Session, card_id: int, *, lock: bool = True) -> Card:
    """The card, row-locked on PostgreSQL so concurrent moves queue up."""
    q = select(Card).where(Card.id == card_id)
    if lock and is_postgres(session):
        q = q.with_for_update()
    card = session.scalar(q.execution_options(populate_existing=True))
    if card is None:
        raise NotFound(f"no card with id {card_id}")
    return card


def load_card_by(session: Session, *, column: Any, value: str, lock: bool = True) -> Card:
    q = select(Card).where(column == value)
    if lock and is_postgres(session):
        q = q.with_for_update()
    card = session.scalar(q.execution_options(populate_existing=True))
    if card is None:
        raise NotFound(f"no card with {column.key} {value!r}", field=column.key)
    return card


def move(
    session: Session,
    card: Card,
    action: Action,
    *,
    rt: Runtime,
    actor: Actor,
    at: datetime,
    channel: str,
    place_org_id: int | None = None,
    reason_code: str | None = None,
    agent: Agent | None = None,
    detail: dict[str, Any] | None = None,
    holder_id_number: str | None = None,
) -> CardTransition:
    """Apply ``action`` to ``card`` under the transition table, record it, tell the bank."""
    current = CardState(card.state)
    before = CardState(card.state_before_loss) if card.state_before_loss else None
    target = next_state(current, action, before)
    if target in LOST and current not in LOST:
        card.state_before_loss = current.value
    elif current in LOST and target not in LOST:
        card.state_before_loss = None
        card.oral_loss_lapses_at = None
        card.loss_reported_at = None
    card.state = target.value
    transition = CardTransition(
        card_id=card.id,
        person_id=card.person_id,
        from_state=current.value,
        to_state=target.value,
        action=action.value,
        channel=channel,
        reason_code=reason_code,
        place_org_id=place_org_id if place_org_id is not None else actor.org_id,
        actor_staff_id=actor.staff_id,
        agent=agent.record() if agent else None,
        occurred_at=at,
        detail=detail or {},
    )
    session.add(transition)
    session.flush()
    record(
        session,
        actor=actor,
        at=at,
        action=f"card.{action.value}",
        subject_type="card",
        subject_id=card.id,
        person_id=card.person_id,
        channel=channel,
        detail={
            "from": current.value,
            "to": target.value,
            "reason": reason_code,
            "transition_id": transition.id,
            # who acted for the holder, and what they showed (masked ID number).
            **({"agent": transition.agent} if transition.agent else {}),
        },
    )
    told = BUS.publish(
        Delivery(session=session, rt=rt, actor=actor),
        CardsMoved(
            moves=(
                CardMove(
                    card_id=card.id,
                    bank_code=card.bank_code,
                    serial=card.serial,
                    bank_card_number=card.bank_card_number,
                    from_state=current.value,
                    to_state=target.value,
                    action=action.value,
                    holder_id_number=holder_id_number,
                ),
            ),
            at=at,
        ),
    )
    if not told:
        raise RuntimeError("nobody hears card moves (the bank side): call sscard.wiring.wire()")
    return transition


def record_creations(
    session: Session,
    cards: list[Card],
    *,
    actor: Actor,
    at: datetime,
    channel: str,
    reason_code: str,
) -> list[CardTransition]:
    """The first record of each card's history: ordered from an accepted application."""
    transitions = [
        CardTransition(
            card_id=card.id,
            person_id=card.person_id,
            from_state="none",
            to_state=CardState.ORDERED.value,
            action="order",
            channel=channel,
            reason_code=reason_code,
            place_org_id=actor.org_id,
            actor_staff_id=actor.staff_id,
            occurred_at=at,
            detail={"ready_on": card.ready_on.isoformat()},
        )
        for card in cards
    ]
    session.add_all(transitions)
    session.flush()
    record_many(
        session,
        actor=actor,
        at=at,
        action="card.order",
        subject_type="card",
        channel=channel,
        entries=(
            (t.card_id, t.person_id, {"reason": reason_code, "transition_id": t.id})
            for t in transitions
        ),
    )
    return transitions
