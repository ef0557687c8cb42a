"""The account follows the card: the bank's side of the center's ``CardsMoved`` messages.

A produced card opens its account; a loss report freezes it; a cancelled or lapsed
report thaws it; replacement, change and destruction close it (L-1, L-2, L-3, R-2,
R-3). What a card's move means for its account, and what that does to the account, are
``bank.model``'s rules (``account_action_for``, ``decide_account_move``); this module
only applies them. Set-based: whatever the size of a sweeper batch, one INSERT for new
accounts, one UPDATE for the others and one INSERT into the bank's own journal.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.bank.model import (
    OPENED,
    AccountAction,
    AccountState,
    account_action_for,
    applies,
    decide_account_move,
)
from sscard.bank.repo import CENTER_MESSAGE, Act, record_acts
from sscard.bank.tables import BankAccount
from sscard.core.errors import InvalidInput
from sscard.db.engine import is_postgres
from sscard.db.moves import MoveGroup, among, update_moves
from sscard.messages import BUS, CardMove, CardsMoved, Delivery
from sscard.runtime import Runtime


def _open(s: Session, rt: Runtime, moves: list[CardMove], *, actor: Actor, at: datetime) -> None:
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
        insert(BankAccount).returning(
            BankAccount.id, BankAccount.bank_code, sort_by_parameter_order=True
        ),
        rows,
    ).all()
    acts = [
        Act(r.id, r.bank_code, "none", OPENED.value, AccountAction.OPEN.value, _why(m))
        for r, m in zip(created, moves, strict=True)
    ]
    record_acts(s, rt, acts, actor=actor, at=at, channel=CENTER_MESSAGE)


def _why(move: CardMove) -> dict[str, Any]:
    return {"card_action": move.action}


def _follow(
    s: Session,
    rt: Runtime,
    plan: dict[int, tuple[AccountAction, CardMove]],
    *,
    actor: Actor,
    at: datetime,
) -> None:
    """Freeze, thaw or close the accounts of the planned cards, in one UPDATE."""
    q = select(
        BankAccount.id,
        BankAccount.card_id,
        BankAccount.bank_code,
        BankAccount.state,
        BankAccount.state_before_freeze,
    ).where(among(s, BankAccount.card_id, list(plan)))
    if is_postgres(s):
        q = q.with_for_update()
    decided = []
    for r in s.execute(q):
        action, move = plan[r.card_id]
        state = AccountState(r.state)
        if not applies(state, action):  # already frozen, already closed: left alone
            continue
        before = AccountState(r.state_before_freeze) if r.state_before_freeze else None
        decided.append((r, move, decide_account_move(state, action, before, at=at)))
    if not decided:
        return
    kinds: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for r, _, e in decided:
        kinds[(e.from_state, e.to_state, e.changes)].append(r.id)
    groups = [
        MoveGroup(ids, source.value, {**dict(changes), "state": target.value})
        for (source, target, changes), ids in kinds.items()
    ]
    moved = {row.id for row in update_moves(s, BankAccount, groups, BankAccount.id)}
    acts = [
        Act(r.id, r.bank_code, e.from_state.value, e.to_state.value, e.action.value, _why(m))
        for r, m, e in decided
        if r.id in moved
    ]
    record_acts(s, rt, acts, actor=actor, at=at, channel=CENTER_MESSAGE)


def on_cards_moved(delivery: Delivery, message: CardsMoved) -> None:
    """The center moved cards: open, freeze, unfreeze or close their accounts.

    Set-based: whatever the size of a sweeper batch, one statement per kind of change
    (L-1, L-2, L-3, R-2, R-3). An account the change does not apply to (already
    frozen, already closed, or none for a card produced before the bank side existed)
    is left alone.
    """
    opening: list[CardMove] = []
    plan: dict[int, tuple[AccountAction, CardMove]] = {}
    for move in message.moves:
        action = account_action_for(move.action, move.from_state, move.to_state)
        if action is AccountAction.OPEN:
            opening.append(move)
        elif action is not None:
            plan[move.card_id] = (action, move)
    s, rt, actor, at = delivery.session, delivery.rt, delivery.actor, message.at
    if opening:
        _open(s, rt, opening, actor=actor, at=at)
    if plan:
        _follow(s, rt, plan, actor=actor, at=at)


BUS.subscribe(CardsMoved, on_cards_moved)
