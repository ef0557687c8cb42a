"""The bank's own tables in use: finding an account, recording its acts (C-1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.core.errors import NotFound
from sscard.core.ids import mask_bank_card, parse_bank_card_number
from sscard.core.protect import BANK, BANK_CARD_NUMBER
from sscard.db.engine import is_postgres
from sscard.db.moves import insert_rows
from sscard.db.types import matches
from sscard.messages import BUS, AccountAct, BankAccountsChanged, Delivery
from sscard.runtime import Runtime

CENTER_MESSAGE = "center_message"  # channel of the acts the center's messages cause


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


@dataclass(frozen=True, slots=True)
class Act:
    """One act of the bank on one account, to record in its own journal."""

    account_id: int
    bank_code: str
    from_state: str
    to_state: str
    action: str
    detail: dict[str, Any] | None = None


def record_acts(
    s: Session,
    rt: Runtime,
    acts: Sequence[Act],
    *,
    actor: Actor,
    at: datetime,
    channel: str,
    objects: bool = False,
) -> list[BankAccountEvent]:
    """Record ``acts`` in the bank's own journal with one INSERT, and tell the center with
    one ``BankAccountsChanged`` (for partner events); the rows as ORM objects when
    ``objects`` (one act at a counter), otherwise none (never commits)."""
    if not acts:
        return []
    params = [
        {
            "account_id": a.account_id,
            "bank_code": a.bank_code,
            "from_state": a.from_state,
            "to_state": a.to_state,
            "action": a.action,
            "actor_staff_id": actor.staff_id,
            "actor_org_id": actor.org_id,
            "source": actor.source,
            "channel": channel,
            "occurred_at": at,
            "detail": a.detail or {},
        }
        for a in acts
    ]
    events: list[BankAccountEvent] = []
    if objects:
        q = insert(BankAccountEvent).returning(BankAccountEvent, sort_by_parameter_order=True)
        events = list(s.scalars(q, params))
        ids = [e.id for e in events]
    else:
        shared = ("actor_staff_id", "actor_org_id", "source", "channel", "occurred_at")
        ids = insert_rows(s, BankAccountEvent, params, key="account_id", shared=shared)
    BUS.publish(
        Delivery(session=s, rt=rt, actor=actor),
        BankAccountsChanged(
            acts=tuple(
                AccountAct(
                    account_id=a.account_id,
                    bank_code=a.bank_code,
                    action=a.action,
                    from_state=a.from_state,
                    to_state=a.to_state,
                    actor_org_id=actor.org_id,
                    detail={
                        "from": a.from_state,
                        "to": a.to_state,
                        "event_id": event_id,
                        "bank_code": a.bank_code,
                        **(a.detail or {}),
                    },
                )
                for a, event_id in zip(acts, ids, strict=True)
            ),
            at=at,
        ),
    )
    return events


def record_event(
    s: Session,
    rt: Runtime,
    account: BankAccount,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    from_state: str,
    detail: dict[str, Any] | None = None,
) -> BankAccountEvent:
    """One act at a counter on ``account`` (already changed) in the bank's own journal."""
    act = Act(account.id, account.bank_code, str(from_state), account.state, str(action), detail)
    (event,) = record_acts(
        s, rt, [act], actor=actor, at=at, channel=actor.org_kind.value, objects=True
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
