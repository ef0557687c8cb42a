"""The bank's own tables in use: finding an account, writing its events (C-1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.audit.service import record
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.core.errors import NotFound
from sscard.core.ids import mask_bank_card, parse_bank_card_number
from sscard.core.protect import BANK, BANK_CARD_NUMBER
from sscard.db.engine import is_postgres
from sscard.db.types import matches

SUBJECT = "bank_account"  # audit subject type of every bank account change


def load_account(s: Session, bank_card_number: str, *, lock: bool = True) -> BankAccount:
    """The account of a bank card, row-locked on PostgreSQL so concurrent changes queue."""
    number = parse_bank_card_number(bank_card_number)
    # The number is sealed under the bank's key: found through its blind index.
    q = select(BankAccount).where(
        matches(BankAccount.bank_card_number_hash, BANK, BANK_CARD_NUMBER, number)
    )
    if lock and is_postgres(s):
        q = q.with_for_update()
    account = s.scalar(q.execution_options(populate_existing=True))
    if account is None:
        raise NotFound(
            f"no bank account with card number {mask_bank_card(number)}", field="bank_card_number"
        )
    return account


def record_event(
    s: Session,
    account: BankAccount,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    from_state: str,
    detail: dict[str, Any] | None = None,
) -> BankAccountEvent:
    """The account's event row and its audit record, in the caller's transaction."""
    action, from_state = str(action), str(from_state)
    event = BankAccountEvent(
        account_id=account.id,
        from_state=from_state,
        to_state=account.state,
        action=action,
        actor_staff_id=actor.staff_id,
        occurred_at=at,
        detail=detail or {},
    )
    s.add(event)
    s.flush()
    record(
        s,
        actor=actor,
        at=at,
        action=f"{SUBJECT}.{action}",
        subject_type=SUBJECT,
        subject_id=account.id,
        channel=actor.org_kind.value,
        detail={
            "from": from_state,
            "to": account.state,
            "event_id": event.id,
            "bank_code": account.bank_code,
            **(detail or {}),
        },
    )
    return event


def events_of(s: Session, account_id: int, *, limit: int = 50) -> list[BankAccountEvent]:
    """The account's latest events, newest first."""
    return list(
        s.scalars(
            select(BankAccountEvent)
            .where(BankAccountEvent.account_id == account_id)
            .order_by(BankAccountEvent.id.desc())
            .limit(limit)
        )
    )
