"""Moving a card: the one place that changes a card's state and records it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sscard.access.model import Actor, Agent
from sscard.audit.service import AuditRow, record_many, record_rows
from sscard.cards.model import Action, CardState, MoveEffect, decide_move
from sscard.cards.tables import Card, CardTransition
from sscard.core.errors import Conflict, NotFound
from sscard.db.engine import is_postgres
from sscard.db.moves import MoveGroup, insert_rows, update_moves
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


@dataclass(frozen=True, slots=True)
class CardMovePlan:
    """One card's decided move, with what the writer needs to record and announce it."""

    card_id: int
    person_id: int
    bank_code: str
    serial: str | None
    bank_card_number: str | None
    effect: MoveEffect
    agent: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None
    # Only on production: the holder's ID number, for the bank's own customer data.
    holder_id_number: str | None = None


@dataclass(frozen=True)
class Written:
    """The moves the writer applied (the guard skips a card that moved meanwhile), and
    their transition rows: ORM objects when asked for, otherwise ids."""

    moves: list[CardMovePlan]
    transition_ids: list[int]
    transitions: list[CardTransition]


def write_moves(
    session: Session,
    moves: Sequence[CardMovePlan],
    *,
    rt: Runtime,
    actor: Actor,
    at: datetime,
    channel: str,
    reason_code: str | None = None,
    place_org_id: int | None = None,
    extra: dict[str, Any] | None = None,
    card: Card | None = None,
) -> Written:
    """Record decided card moves, for one card or a sweeper's batch alike (never commits).

    One UPDATE for all (each kind of move guarded by the state it was decided from,
    ``update_moves``), one INSERT of transition rows, one
    of audit records (and their partner events), and one ``CardsMoved`` to the bank.
    ``extra`` holds column values a job sets besides the move's own (D-2's
    ``at_outlet_since``). With ``card`` (a move of that one loaded card) the card object
    is brought up to date and the transition is returned as an ORM object.
    """
    kinds: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for m in moves:
        e = m.effect
        kinds[(e.from_state, e.to_state, e.changes)].append(m.card_id)
    groups = [
        MoveGroup(ids, source.value, {**dict(changes), **(extra or {}), "state": target.value})
        for (source, target, changes), ids in kinds.items()
    ]
    rows = update_moves(session, Card, groups, Card.id, Card.version)
    moved = {r.id: r.version for r in rows}
    if card is not None and card.id in moved:
        (group,) = groups
        for key, value in group.values.items():
            set_committed_value(card, key, value)
        set_committed_value(card, "version", moved[card.id])
    done = [m for m in moves if m.card_id in moved]
    if card is not None and not done:
        raise Conflict("the card was changed meanwhile: try again", card_id=card.id)
    if not done:
        return Written([], [], [])
    place = place_org_id if place_org_id is not None else actor.org_id
    params = [
        {
            "card_id": m.card_id,
            "person_id": m.person_id,
            "from_state": m.effect.from_state.value,
            "to_state": m.effect.to_state.value,
            "action": m.effect.action.value,
            "channel": channel,
            "reason_code": reason_code,
            "place_org_id": place,
            "actor_staff_id": actor.staff_id,
            "agent": m.agent,
            "occurred_at": at,
            "detail": m.detail or {},
        }
        for m in done
    ]
    transitions: list[CardTransition] = []
    if card is not None:
        transitions = list(
            session.scalars(
                insert(CardTransition).returning(CardTransition, sort_by_parameter_order=True),
                params,
            )
        )
        ids = [t.id for t in transitions]
    else:
        ids = insert_rows(
            session,
            CardTransition,
            params,
            key="card_id",
            shared=("channel", "reason_code", "place_org_id", "actor_staff_id", "occurred_at"),
        )
    record_rows(
        session,
        [
            AuditRow(
                actor=actor,
                at=at,
                action=f"card.{m.effect.action.value}",
                subject_type="card",
                subject_id=m.card_id,
                person_id=m.person_id,
                channel=channel,
                detail={
                    "from": m.effect.from_state.value,
                    "to": m.effect.to_state.value,
                    "reason": reason_code,
                    "transition_id": transition_id,
                    # who acted for the holder, and what they showed (masked ID number).
                    **({"agent": m.agent} if m.agent else {}),
                },
            )
            for m, transition_id in zip(done, ids, strict=True)
        ],
    )
    told = BUS.publish(
        Delivery(session=session, rt=rt, actor=actor),
        CardsMoved(
            moves=tuple(
                CardMove(
                    card_id=m.card_id,
                    bank_code=m.bank_code,
                    serial=m.serial,
                    bank_card_number=m.bank_card_number,
                    from_state=m.effect.from_state.value,
                    to_state=m.effect.to_state.value,
                    action=m.effect.action.value,
                    holder_id_number=m.holder_id_number,
                )
                for m in done
            ),
            at=at,
        ),
    )
    if not told:
        raise RuntimeError("nobody hears card moves (the bank side): call sscard.wiring.wire()")
    return Written(done, ids, transitions)


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
    before = CardState(card.state_before_loss) if card.state_before_loss else None
    effect = decide_move(CardState(card.state), action, before, at=at)
    plan = CardMovePlan(
        card_id=card.id,
        person_id=card.person_id,
        bank_code=card.bank_code,
        serial=card.serial,
        bank_card_number=card.bank_card_number,
        effect=effect,
        agent=agent.record() if agent else None,
        detail=detail,
        holder_id_number=holder_id_number,
    )
    written = write_moves(
        session,
        [plan],
        rt=rt,
        actor=actor,
        at=at,
        channel=channel,
        reason_code=reason_code,
        place_org_id=place_org_id,
        card=card,
    )
    return written.transitions[0]


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
