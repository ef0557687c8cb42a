"""The messages between the social security side and the issuing bank's side (C-1).

The two applications on a card keep separate data and keys; they talk only through
these messages, which the seeds name: the bank tells the card management center that
it activated the financial application (serial, ID number, bank card number; V-1),
and the center tells the bank what happened to a card (produced, reported lost,
resumed, replaced, destroyed), so that the bank freezes, unfreezes or closes the
account (L-2, R-2, R-3).

Handlers run synchronously inside the publisher's transaction: a message and the
change that caused it commit or roll back together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.runtime import Runtime


@dataclass(frozen=True, slots=True)
class CardMove:
    """One card's move, as the bank needs to know it."""

    card_id: int
    bank_code: str
    serial: str | None
    bank_card_number: str | None
    from_state: str
    to_state: str
    action: str
    # Only on production: the holder's ID number, the bank's own customer data.
    holder_id_number: str | None = None


@dataclass(frozen=True, slots=True)
class CardsMoved:
    """Center → bank: cards moved (one, or a sweeper batch)."""

    moves: tuple[CardMove, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class FinancialActivated:
    """Bank → center (V-1): the bank activated a card's financial application."""

    bank_code: str
    serial: str
    id_number: str
    bank_card_number: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AccountAct:
    """One act of the bank on one of its accounts, as partners may hear of it."""

    account_id: int
    bank_code: str
    action: str
    from_state: str
    to_state: str
    actor_org_id: int | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BankAccountsChanged:
    """Bank → center: the bank acted on its accounts (one act, or a batch that followed a
    sweeper's ``CardsMoved``); the center stages the partner events from it. The acts
    themselves are recorded in the bank's own tables, never in the center's audit."""

    acts: tuple[AccountAct, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class OldMedicalCardClosed:
    """Social side, cards → accounts (V-1): the old medical insurance card was read at a
    pharmacy and closed; its balance moves to the personal account."""

    person_id: int
    card_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a message is delivered: the sender's transaction, runtime and actor."""

    session: Session
    rt: Runtime
    actor: Actor


M = TypeVar("M")
Handler = Callable[[Delivery, Any], Any]


class MessageBus:
    """Routes a message to its handlers, in the caller's transaction."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)

    def subscribe(self, kind: type[M], handler: Callable[[Delivery, M], Any]) -> None:
        if handler not in self._handlers[kind]:
            self._handlers[kind].append(handler)

    def publish(self, delivery: Delivery, message: object) -> list[Any]:
        """Deliver ``message``; the handlers' results, in subscription order."""
        return [handler(delivery, message) for handler in self._handlers[type(message)]]


BUS = MessageBus()
