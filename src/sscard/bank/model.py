"""The financial account as plain rules: states, the transition table, password entries.

The bank hears about the card only through the center's ``CardsMoved`` messages, whose
card states and actions are plain strings here: this module knows nothing of the
social security side's code (C-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sscard.core.errors import Conflict, IllegalTransition


class AccountState(StrEnum):
    ISSUED = "issued"  # card produced, financial application not activated yet
    ACTIVE = "active"  # financial application activated, password set (V-1, V-2)
    FROZEN = "frozen"  # card reported lost: suspended (L-1, L-2, R-2)
    CLOSED = "closed"  # card replaced, destroyed or superseded: dead for good


class AccountAction(StrEnum):
    OPEN = "open"
    ACTIVATE = "activate"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CLOSE = "close"


class PasswordEvent(StrEnum):
    """Password events: recorded like transitions, the account's state stays as it is."""

    WRONG = "password_wrong"
    LOCKED = "password_locked"
    RIGHT_AFTER_WRONG = "password_count_reset"
    RESET = "password_reset"
    CHANGED = "password_changed"


class _Restore:
    """Target of unfreezing: the state the account had before it was frozen."""

    def __repr__(self) -> str:
        return "RESTORE"


RESTORE = _Restore()
A = AccountState
OPENED = A.ISSUED  # the state of a new account

# The only moves an account can make. Anything else is refused with the allowed set.
TRANSITIONS: dict[tuple[AccountState, AccountAction], AccountState | _Restore] = {
    (A.ISSUED, AccountAction.ACTIVATE): A.ACTIVE,
    (A.ISSUED, AccountAction.FREEZE): A.FROZEN,
    (A.ACTIVE, AccountAction.FREEZE): A.FROZEN,
    (A.FROZEN, AccountAction.UNFREEZE): RESTORE,
    (A.ISSUED, AccountAction.CLOSE): A.CLOSED,
    (A.ACTIVE, AccountAction.CLOSE): A.CLOSED,
    (A.FROZEN, AccountAction.CLOSE): A.CLOSED,
}
NOTES = {
    A.FROZEN: "The card is reported lost: the account stays frozen until the loss report "
    "is cancelled (L-2, L-3, R-2)",
    A.CLOSED: "The card was replaced, changed or destroyed: its account never reopens (R-3)",
}
UNFROZEN = frozenset({A.ISSUED, A.ACTIVE})


def allowed_actions(state: AccountState) -> list[str]:
    """Actions the transition table allows from ``state``."""
    return sorted(a.value for (s, a) in TRANSITIONS if s == state)


def next_state(
    state: AccountState, action: AccountAction, before_freeze: AccountState | None = None
) -> AccountState:
    """The state after ``action``, or IllegalTransition naming what is allowed."""
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise IllegalTransition(
            "bank account", state.value, action.value, allowed_actions(state), NOTES.get(state, "")
        )
    if isinstance(target, _Restore):
        return before_freeze if before_freeze in UNFROZEN else A.ISSUED
    return target


def sources_of(action: AccountAction) -> list[AccountState]:
    """States from which ``action`` is allowed (for set-based updates)."""
    return [s for (s, a) in TRANSITIONS if a == action]


def applies(state: AccountState, action: AccountAction) -> bool:
    """Whether the transition table lets ``action`` move an account in ``state``."""
    return (state, action) in TRANSITIONS


AccountField = str | datetime | None


@dataclass(frozen=True, slots=True)
class AccountMoveEffect:
    """What one move does to an account: its new state and the fields it sets."""

    action: AccountAction
    from_state: AccountState
    to_state: AccountState
    # Column name -> new value; a field not named keeps its value.
    changes: tuple[tuple[str, AccountField], ...] = ()


def decide_account_move(
    state: AccountState,
    action: AccountAction,
    before_freeze: AccountState | None,
    *,
    at: datetime,
) -> AccountMoveEffect:
    """The effects of ``action`` on an account in ``state`` (L-1, L-2, L-3, R-2, R-3):
    freezing remembers the state to thaw back to and when; thawing forgets both;
    closing forgets the state before a freeze and notes when it closed."""
    target = next_state(state, action, before_freeze)
    changes: dict[str, AccountField] = {}
    if target is A.FROZEN and state is not A.FROZEN:
        changes = {"state_before_freeze": state.value, "frozen_at": at}
    elif target is A.CLOSED:
        changes = {"state_before_freeze": None, "closed_at": at}
    elif state is A.FROZEN:
        changes = {"state_before_freeze": None, "frozen_at": None}
    elif target is A.ACTIVE and state is not A.ACTIVE:
        changes = {"activated_at": at}
    return AccountMoveEffect(action, state, target, tuple(changes.items()))


# ------------------------------------------------------------ what the center's messages mean

PRODUCE = "produce"  # the card action that opens the account
REPORTED_LOST = frozenset({"lost_oral", "lost_written"})  # L-1, L-2: the account freezes
HELD = frozenset({"received", "active"})  # back in the holder's hands: the account thaws
ENDED = frozenset({"replaced", "destroyed", "superseded"})  # V-3, D-2: it closes


def account_action_for(card_action: str, from_state: str, to_state: str) -> AccountAction | None:
    """What a card's move means for its financial account (L-1, L-2, L-3, R-2, R-3).

    ``lost_auto`` (V-5) freezes nothing: the financial application was never activated,
    and its activation is exactly what lifts that report. A written report after an oral
    one finds the account frozen already; one after ``lost_auto`` freezes it.
    """
    if card_action == PRODUCE:
        return AccountAction.OPEN
    if to_state in ENDED:
        return AccountAction.CLOSE
    if to_state in REPORTED_LOST and from_state not in REPORTED_LOST:
        return AccountAction.FREEZE
    if from_state in REPORTED_LOST and to_state in HELD:
        return AccountAction.UNFREEZE
    return None


class AccountNotUsable(Conflict):
    code = "bank_account_not_usable"
    title = "The bank account cannot be used"

    def __init__(self, state: AccountState) -> None:
        why = {
            A.ISSUED: "the financial application is not activated yet: activate it at an "
            "outlet with ID and card, setting the financial password (V-1, V-2)",
            A.FROZEN: "the card is reported lost and the account is frozen (L-2, R-2)",
            A.CLOSED: "the card was replaced, changed or destroyed; the account is closed (R-3)",
        }.get(state, "")
        super().__init__(f"the bank account is '{state.value}': {why}", current_state=state.value)
