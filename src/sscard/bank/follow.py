"""The account follows the card: the bank's side of the center's ``CardsMoved`` messages.

A produced card opens its account; a loss report freezes it; a cancelled or lapsed
report thaws it; replacement, change and destruction close it (L-1, L-2, L-3, R-2,
R-3). Set-based: whatever the size of a sweeper batch, one statement per kind of change.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.audit.service import record_many
from sscard.bank.model import (
    OPENED,
    AccountAction,
    AccountState,
    account_action_for,
    sources_of,
)
from sscard.bank.repo import SUBJECT
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.core.errors import InvalidInput
from sscard.db.engine import is_postgres
from sscard.messages import BUS, CardMove, CardsMoved, Delivery

MESSAGE_CHANNEL = "center_message"  # audit channel of changes the center's messages cause


def _open(s: Session, moves: list[CardMove], *, actor: Actor, at: datetime) -> None:
    """A produced card gets its account, not activated yet."""
    rows = []
    for m in moves:
        if not (m.serial and m.bank_card_number and m.holder_id_number):
            raise InvalidInput(
                "a produced card's message must carry its serial, bank card number and the "
                "holder's ID number",
                field="holder_id_number",
            )
        rows.append(
            {
                "bank_code": m.bank_code,
                "bank_card_number": m.bank_card_number,
                "serial": m.serial,
                "card_id": m.card_id,
                "holder_id_number": m.holder_id_number,
                "state": OPENED.value,
                "failed_attempts": 0,
                "opened_at": at,
                "version": 1,
            }
        )
    created = s.execute(
        insert(BankAccount).returning(BankAccount.id, BankAccount.card_id), rows
    ).all()
    _history(
        s,
        [(r.id, r.card_id, "none", OPENED.value) for r in created],
        action=AccountAction.OPEN,
        moves=moves,
        actor=actor,
        at=at,
    )


def _values(action: AccountAction, at: datetime) -> dict[str, Any]:
    if action is AccountAction.FREEZE:
        return {
            "state": AccountState.FROZEN.value,
            "state_before_freeze": BankAccount.state,
            "frozen_at": at,
        }
    if action is AccountAction.UNFREEZE:
        return {
            "state": func.coalesce(BankAccount.state_before_freeze, AccountState.ISSUED.value),
            "state_before_freeze": None,
            "frozen_at": None,
        }
    assert action is AccountAction.CLOSE
    return {"state": AccountState.CLOSED.value, "state_before_freeze": None, "closed_at": at}


def _follow(
    s: Session, action: AccountAction, moves: list[CardMove], *, actor: Actor, at: datetime
) -> None:
    """One UPDATE for every account of ``moves`` that ``action`` can move."""
    due = and_(
        BankAccount.card_id.in_([m.card_id for m in moves]),
        BankAccount.state.in_([st.value for st in sources_of(action)]),
    )
    q = select(BankAccount.id, BankAccount.state).where(due)
    if is_postgres(s):
        q = q.with_for_update()
    before = {r.id: r.state for r in s.execute(q)}
    if not before:
        return
    rows = s.execute(
        update(BankAccount)
        .where(BankAccount.id.in_(list(before)), due)
        .values(**_values(action, at), version=BankAccount.version + 1)
        .returning(BankAccount.id, BankAccount.card_id, BankAccount.state)
        .execution_options(synchronize_session=False)
    ).all()
    _history(
        s,
        [(r.id, r.card_id, before[r.id], r.state) for r in rows],
        action=action,
        moves=moves,
        actor=actor,
        at=at,
    )


def _history(
    s: Session,
    changes: list[tuple[int, int, str, str]],
    *,
    action: AccountAction,
    moves: list[CardMove],
    actor: Actor,
    at: datetime,
) -> None:
    """Event rows and audit records for (account, card, from, to) changes, in two INSERTs."""
    if not changes:
        return
    card_action = {m.card_id: m.action for m in moves}
    bank_of = {m.card_id: m.bank_code for m in moves}
    s.execute(
        insert(BankAccountEvent),
        [
            {
                "account_id": account_id,
                "from_state": old,
                "to_state": new,
                "action": action.value,
                "actor_staff_id": actor.staff_id,
                "occurred_at": at,
                "detail": {"card_action": card_action[card_id]},
            }
            for account_id, card_id, old, new in changes
        ],
    )
    record_many(
        s,
        actor=actor,
        at=at,
        action=f"{SUBJECT}.{action.value}",
        subject_type=SUBJECT,
        channel=MESSAGE_CHANNEL,
        entries=(
            (
                account_id,
                None,
                {
                    "from": old,
                    "to": new,
                    "card_action": card_action[card_id],
                    "bank_code": bank_of[card_id],
                },
            )
            for account_id, card_id, old, new in changes
        ),
    )


def on_cards_moved(delivery: Delivery, message: CardsMoved) -> None:
    """The center moved cards: open, freeze, unfreeze or close their accounts.

    Set-based: whatever the size of a sweeper batch, one statement per kind of change
    (L-1, L-2, L-3, R-2, R-3). An account the change does not apply to (already
    frozen, already closed, or none for a card produced before the bank side existed)
    is left alone.
    """
    plan: dict[AccountAction, list[CardMove]] = defaultdict(list)
    for move in message.moves:
        action = account_action_for(move.action, move.from_state, move.to_state)
        if action is not None:
            plan[action].append(move)
    s, actor, at = delivery.session, delivery.actor, message.at
    if plan[AccountAction.OPEN]:
        _open(s, plan[AccountAction.OPEN], actor=actor, at=at)
    for action in (AccountAction.FREEZE, AccountAction.UNFREEZE, AccountAction.CLOSE):
        if plan[action]:
            _follow(s, action, plan[action], actor=actor, at=at)


BUS.subscribe(CardsMoved, on_cards_moved)
