"""Use cases of the issuing bank at its outlets: financial activation and passwords.

The bank side reads and writes only its own tables and hashes with its own key (C-1).
What it knows of a card arrives as the center's ``CardsMoved`` messages (``follow``);
what the center learns of the financial application is the ``FinancialActivated``
message (V-1), published here inside the same transaction as the activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy.orm import Session

from sscard.access.model import Actor, Agent, RecordScope, check_agent, require, require_scope
from sscard.bank.model import (
    AccountAction,
    AccountNotUsable,
    AccountState,
    PasswordEvent,
    decide_account_move,
    next_state,
)
from sscard.bank.repo import events_of, load_account, record_event
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.core.errors import InvalidInput
from sscard.core.ids import IdNumber, mask_bank_card, parse_id_number
from sscard.core.keys import BANK, load_key
from sscard.core.passwords import (
    PasswordLocked,
    PinEntry,
    PinKey,
    WrongPassword,
    check_new_password,
    enter_pin,
)
from sscard.core.policy import AgentAct
from sscard.db.engine import UnitOfWork
from sscard.messages import BUS, Delivery, FinancialActivated
from sscard.runtime import Runtime


@dataclass(frozen=True)
class AccountChange:
    """An account after a use case, with the event it recorded."""

    account: BankAccount
    event: BankAccountEvent | None


@dataclass(frozen=True)
class AccountHistory:
    """An account with its latest events, newest first."""

    account: BankAccount
    events: list[BankAccountEvent]


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of a financial password check (P-2)."""

    account: BankAccount
    entry: PinEntry


WHAT = "financial password"


@cache
def _key() -> PinKey:
    return PinKey(load_key(BANK))


def _verifier(account: BankAccount, password: str) -> str:
    """The stored form of a financial password, bound to its account."""
    return _key().verifier(f"bank_account:{account.id}", password)


def _locked() -> PasswordLocked:
    return PasswordLocked(what=WHAT, field="financial_password")


def _scope_of(account: BankAccount) -> RecordScope:
    """Whose an account is: its bank's (answered like an unknown account elsewhere, S-1)."""
    return RecordScope(
        what=f"bank account with card number {mask_bank_card(account.bank_card_number)}",
        field="bank_card_number",
        bank_codes=frozenset({account.bank_code}),
    )


def _holder(account: BankAccount, id_number: str) -> IdNumber:
    holder = parse_id_number(id_number)
    if holder.number != account.holder_id_number:
        raise InvalidInput("the ID number does not belong to this card's holder", field="id_number")
    return holder


def _usable(account: BankAccount) -> None:
    """Only an active account with a password set takes entries; a locked one refuses."""
    state = AccountState(account.state)
    if state is not AccountState.ACTIVE or account.password_hash is None:
        raise AccountNotUsable(state)
    if account.locked_at is not None:
        raise _locked()


def activate_financial(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    bank_card_number: str,
    id_number: str,
    financial_password: str,
    agent: Agent | None = None,
) -> AccountChange:
    """V-1, V-2: activate the financial application at an outlet with ID and card."""
    change = activate_financial_in(
        uow.session,
        rt,
        actor=actor,
        bank_card_number=bank_card_number,
        id_number=id_number,
        financial_password=financial_password,
        agent=agent,
    )
    uow.commit()
    return change


def activate_financial_in(
    s: Session,
    rt: Runtime,
    *,
    actor: Actor,
    bank_card_number: str,
    id_number: str,
    financial_password: str,
    agent: Agent | None = None,
) -> AccountChange:
    """The financial activation inside the caller's transaction (an outlet activating
    both applications at one counter visit, V-2)."""
    require(actor, "bank.activate")
    check_agent(rt.policy, AgentAct.ACTIVATION, agent)
    account = load_account(s, bank_card_number, lock=False)
    require_scope(actor, "bank.activate", _scope_of(account))
    holder = _holder(account, id_number)
    next_state(AccountState(account.state), AccountAction.ACTIVATE)
    password = check_new_password(
        financial_password, birth_date=holder.birth_date, field="financial_password"
    )
    password_hash = _verifier(account, password)
    now = rt.now()
    # The center first (it locks the card), then the account: the lock order of every
    # card move that reaches the bank, so the two never deadlock.
    delivered = BUS.publish(
        Delivery(session=s, rt=rt, actor=actor),
        FinancialActivated(
            bank_code=account.bank_code,
            serial=account.serial,
            id_number=holder.number,
            bank_card_number=account.bank_card_number,
            at=now,
        ),
    )
    if not delivered:
        raise RuntimeError("nobody receives FinancialActivated: call sscard.wiring.wire()")
    account = load_account(s, account.bank_card_number)
    current = AccountState(account.state)
    effect = decide_account_move(current, AccountAction.ACTIVATE, None, at=now)
    account.state = effect.to_state.value
    for name, value in effect.changes:
        setattr(account, name, value)
    account.password_hash = password_hash
    account.failed_attempts = 0
    account.locked_at = None
    event = record_event(
        s,
        rt,
        account,
        actor=actor,
        at=now,
        action=AccountAction.ACTIVATE,
        from_state=current.value,
        detail={"agent": agent.record()} if agent else None,
    )
    return AccountChange(account, event)


def _enter(
    s: Session, rt: Runtime, account: BankAccount, *, actor: Actor, password: str
) -> PinEntry:
    """One counted entry of the financial password (P-2); never commits."""
    _usable(account)
    assert account.password_hash is not None
    key = _key()
    right = key.matches(account.password_hash, f"bank_account:{account.id}", password)
    if right and key.needs_upgrade(account.password_hash):
        account.password_hash = _verifier(account, password)
    entry = enter_pin(
        right=right,
        failed_attempts=account.failed_attempts,
        max_wrong=rt.policy.passwords.max_wrong_attempts,
    )
    if entry.failed_attempts != account.failed_attempts:
        now = rt.now()
        account.failed_attempts = entry.failed_attempts
        if entry.locked:
            account.locked_at = now
        record_event(
            s,
            rt,
            account,
            actor=actor,
            at=now,
            action=(
                PasswordEvent.LOCKED
                if entry.locked
                else PasswordEvent.WRONG
                if not entry.verified
                else PasswordEvent.RIGHT_AFTER_WRONG
            ),
            from_state=account.state,
            detail={"failed_attempts": entry.failed_attempts},
        )
    return entry


def verify_financial_password(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, bank_card_number: str, financial_password: str
) -> PasswordCheck:
    """P-2: check the financial password; wrong entries count and enough of them lock it."""
    require(actor, "bank.password.verify")
    s = uow.session
    account = load_account(s, bank_card_number)
    require_scope(actor, "bank.password.verify", _scope_of(account))
    entry = _enter(s, rt, account, actor=actor, password=financial_password)
    uow.commit()
    return PasswordCheck(account, entry)


def reset_financial_password(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    bank_card_number: str,
    id_number: str,
    new_password: str,
    agent: Agent | None = None,
) -> AccountChange:
    """P-2: unlock and reset a forgotten or locked password at an outlet with ID and card."""
    require(actor, "bank.password.reset")
    check_agent(rt.policy, AgentAct.PASSWORD_RESET, agent)
    s = uow.session
    account = load_account(s, bank_card_number)
    require_scope(actor, "bank.password.reset", _scope_of(account))
    holder = _holder(account, id_number)
    state = AccountState(account.state)
    if state is not AccountState.ACTIVE:
        raise AccountNotUsable(state)
    password = check_new_password(new_password, birth_date=holder.birth_date, field="new_password")
    was_locked = account.locked_at is not None
    account.password_hash = _verifier(account, password)
    account.failed_attempts = 0
    account.locked_at = None
    event = record_event(
        s,
        rt,
        account,
        actor=actor,
        at=rt.now(),
        action=PasswordEvent.RESET,
        from_state=state.value,
        detail={"unlocked": was_locked, **({"agent": agent.record()} if agent else {})},
    )
    uow.commit()
    return AccountChange(account, event)


def change_financial_password(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    bank_card_number: str,
    old_password: str,
    new_password: str,
) -> AccountChange:
    """P-3: change the financial password with the old one, a counted entry (P-2)."""
    require(actor, "bank.password.change")
    s = uow.session
    account = load_account(s, bank_card_number)
    require_scope(actor, "bank.password.change", _scope_of(account))
    _usable(account)
    birth = parse_id_number(account.holder_id_number).birth_date
    password = check_new_password(new_password, birth_date=birth, field="new_password")
    entry = _enter(s, rt, account, actor=actor, password=old_password)
    if not entry.verified:
        uow.commit()  # the wrong entry counts, though the change is refused
        if entry.locked:
            raise PasswordLocked(what=WHAT, field="old_password", just_now=True)
        raise WrongPassword(entry, what=WHAT, field="old_password")
    if password == old_password:  # the old one was verified: no secret left to time
        raise InvalidInput(
            "the new password must differ from the old one", field="new_password", reason="same"
        )
    account.password_hash = _verifier(account, password)
    event = record_event(
        s,
        rt,
        account,
        actor=actor,
        at=rt.now(),
        action=PasswordEvent.CHANGED,
        from_state=account.state,
    )
    uow.commit()
    return AccountChange(account, event)


def find_account(s: Session, *, actor: Actor, bank_card_number: str) -> AccountHistory:
    """The account of a bank card and its latest events, for its own bank only (S-1)."""
    require(actor, "bank.accounts.read")
    account = load_account(s, bank_card_number, lock=False)
    require_scope(actor, "bank.accounts.read", _scope_of(account))
    return AccountHistory(account, events_of(s, account.id))
