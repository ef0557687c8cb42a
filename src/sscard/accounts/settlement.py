"""Settlement at designated hospitals and pharmacies, and refunds (C-4, V-1, V-2, R-2).

Each is one use case in one unit of work: the card is locked, its password checked,
the money moved, the audit record written, and the unit committed once. A retried
request is answered from its Idempotency-Key (``db.idempotency``, kept in the same
transaction by the request's unit), so a payment is never debited twice.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM, Actor, RecordScope, require
from sscard.accounts import passwords
from sscard.accounts.ledger import Leg, Owner, account, balance, institution, personal, post
from sscard.accounts.model import (
    AccountKind,
    InsufficientBalance,
    SettlementKind,
    TxnKind,
    check_amount,
)
from sscard.accounts.tables import LedgerTxn
from sscard.audit.service import record
from sscard.cards import checks
from sscard.cards.model import CardState, refuse_unusable
from sscard.cards.service import activate_card, close_old_medical_card, has_old_medical_card
from sscard.cards.tables import Card
from sscard.cards.transitions import load_card
from sscard.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sscard.core.policy import Channel
from sscard.db.engine import UnitOfWork
from sscard.db.statements import Prepared
from sscard.messages import Delivery, OldMedicalCardClosed
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from sscard.runtime import Runtime

_LOCK_CARD = Prepared(checks.BY_NUMBER.with_for_update())

KINDS_OF = {
    OrgKind.HOSPITAL: {SettlementKind.OUTPATIENT, SettlementKind.INPATIENT},
    OrgKind.PHARMACY: {SettlementKind.PHARMACY},
}


@dataclass(frozen=True)
class Receipt:
    """What the institution prints: the payment, the balance after it, the card."""

    transaction_id: int
    kind: str
    amount_fen: int
    balance_fen: int
    card_id: int
    card_state: str
    activated: bool
    at: datetime


def _kind(actor: Actor, kind: str) -> SettlementKind:
    try:
        what = SettlementKind(kind)
    except ValueError:
        raise InvalidInput("kind is outpatient, inpatient or pharmacy", field="kind") from None
    if what not in KINDS_OF.get(actor.org_kind, set()):
        raise Forbidden(f"a {actor.org_kind.value} does not settle '{what}'")
    return what


def settle(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_number: str,
    kind: str,
    amount_fen: int,
    password: str | None = None,
    new_password: str | None = None,
    old_medical_card_no: str | None = None,
) -> Receipt:
    """Pay from the medical personal account; a first use activates the card (V-1).

    The first use sets the consumption password (V-2) and activates the card even when
    the payment itself is then refused for want of money: the registration happened.
    """
    require(actor, "accounts.settle")
    what = _kind(actor, kind)
    check_amount(amount_fen)
    assert actor.org_id is not None
    s = uow.session
    number = (card_number or "").strip().upper()
    # Row locks (PostgreSQL; SQLite's writers queue anyway): a loss report waits, or
    # wins first; parallel password entries all count. One statement for both rows, or
    # the card alone when its holder has no password yet.
    pin: Any = passwords.WITH_CARD.first(s, {"number": number})
    card: Any = pin or _LOCK_CARD.first(s, {"number": number})
    if card is None:
        raise NotFound("no card with this card number", field="card_number")
    require(
        actor,
        "accounts.settle",
        RecordScope(
            what="card with this card number",
            field="card_number",
            person_id=card.person_id,
            unit_org_id=card.unit_org_id,
            bank_codes=frozenset({card.bank_code}),
            presented=True,
        ),
    )
    channel = Channel.PHARMACY if what is SettlementKind.PHARMACY else Channel.HOSPITAL
    activated = card.state == CardState.RECEIVED
    if activated:
        _first_use(
            uow,
            rt,
            load_card(s, card.id),
            actor=actor,
            channel=channel,
            new_password=new_password,
            old_medical_card_no=old_medical_card_no,
        )
    else:
        refuse_unusable(CardState(card.state), valid_until=card.valid_until, today=rt.today())
        if new_password and pin is None:
            # Activated without one (e.g. by the bank's financial activation): V-2.
            _set_password(
                s,
                rt,
                card.person_id,
                actor=actor,
                new_password=new_password,
                event="set_at_first_use",
            )
        elif new_password and not password:
            raise Conflict(
                "the card is already activated (perhaps at the same moment elsewhere): pay "
                "with the consumption password",
                reason="activated_meanwhile",
            )
        else:
            passwords.verify(
                uow, rt, actor=actor, person_id=card.person_id, password=password or "", row=pin
            )
        if what is SettlementKind.PHARMACY and old_medical_card_no:
            # V-1: an old card read at a pharmacy later still hands over its balance.
            person = s.get(Person, card.person_id)
            assert person is not None
            if has_old_medical_card(person):
                close_old_medical_card(
                    s,
                    rt,
                    actor=actor,
                    person=person,
                    card=load_card(s, card.id),
                    old_medical_card_no=old_medical_card_no,
                )
    try:
        with s.begin_nested() if activated else nullcontext():
            receipt = _debit(
                s,
                rt,
                actor=actor,
                card_id=card.id,
                person_id=card.person_id,
                what=what,
                amount_fen=amount_fen,
                activated=activated,
            )
    except InsufficientBalance:
        if activated:
            uow.commit()  # V-1: the activation stands; the payment is refused
        raise
    uow.commit()
    return receipt


def _first_use(
    uow: UnitOfWork,
    rt: Runtime,
    card: Card,
    *,
    actor: Actor,
    channel: Channel,
    new_password: str | None,
    old_medical_card_no: str | None,
) -> None:
    """V-1, V-2: the first registration with the card activates it and sets its password."""
    if not new_password:
        raise InvalidInput(
            "first use of this card: the holder sets the consumption password now "
            "(new_password), which activates the card (V-1, V-2)",
            field="new_password",
        )
    activate_card(
        uow.session,
        rt,
        card,
        actor=actor,
        channel=channel,
        agent=None,
        old_medical_card_no=old_medical_card_no,
    )
    _set_password(
        uow.session,
        rt,
        card.person_id,
        actor=actor,
        new_password=new_password,
        event="set_at_activation",
    )


def _set_password(
    s: Session, rt: Runtime, person_id: int, *, actor: Actor, new_password: str, event: str
) -> None:
    person = s.get(Person, person_id)
    assert person is not None
    passwords.set_password(
        s,
        rt,
        actor=actor,
        person=person,
        password=new_password,
        field="new_password",
        event=event,
    )


def _debit(
    s: Session,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    person_id: int,
    what: SettlementKind,
    amount_fen: int,
    activated: bool,
) -> Receipt:
    assert actor.org_id is not None
    now = rt.now()
    payer = personal(person_id)
    posted = post(
        s,
        kind=TxnKind.SETTLEMENT,
        person_id=person_id,
        org_id=actor.org_id,
        card_id=card_id,
        actor_staff_id=actor.staff_id,
        now=now,
        detail={"kind": what.value},
        legs=[
            Leg(payer, -amount_fen),
            Leg(institution(actor.org_id, person_id=person_id), amount_fen, True),
        ],
    )
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.settled",
        subject_type="ledger_txn",
        subject_id=posted.txn_id,
        person_id=person_id,
        channel=actor.org_kind.value,
        detail={"amount_fen": amount_fen, "kind": what.value, "card_id": card_id},
    )
    return Receipt(
        transaction_id=posted.txn_id,
        kind=TxnKind.SETTLEMENT.value,
        amount_fen=amount_fen,
        balance_fen=posted.balances[payer],
        card_id=card_id,
        card_state=CardState.ACTIVE.value,  # a payment is made with an active card only
        activated=activated,
        at=now,
    )


def move_old_card_balance(delivery: Delivery, message: OldMedicalCardClosed) -> None:
    """V-1 at a pharmacy: the closed old card's balance moves to the personal account."""
    s, actor = delivery.session, delivery.actor
    now = message.at
    old = account(s, AccountKind.OLD_CARD, person_id=message.person_id, now=now)
    amount = balance(s, old.id)
    if amount <= 0:
        return
    posted = post(
        s,
        kind=TxnKind.OLD_CARD_TRANSFER,
        person_id=message.person_id,
        card_id=message.card_id,
        actor_staff_id=actor.staff_id,
        org_id=actor.org_id,
        now=now,
        legs=[Leg(old.id, -amount), Leg(personal(message.person_id), amount)],
    )
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.old_card_transferred",
        subject_type="ledger_txn",
        subject_id=posted.txn_id,
        person_id=message.person_id,
        detail={"amount_fen": amount},
    )


def refund(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, settlement_id: int, amount_fen: int
) -> Receipt:
    """Refund a settlement once, for at most its amount, at the institution that took it."""
    require(actor, "accounts.settle")
    check_amount(amount_fen)
    s = uow.session
    original = s.get(LedgerTxn, settlement_id)
    if original is None or original.kind != TxnKind.SETTLEMENT:
        raise NotFound(f"no settlement with id {settlement_id}")
    # A settlement is refunded by the institution that took it; to any other it is
    # unknown (S-1: out of scope answers like a missing record).
    if actor is not SYSTEM and original.org_id != actor.org_id:
        raise NotFound(f"no settlement with id {settlement_id}")
    if s.scalar(select(LedgerTxn.id).where(LedgerTxn.refund_of_id == original.id)):
        raise Conflict(
            "this settlement was already refunded; a refund is made once",
            reason="already_refunded",
        )
    if amount_fen > original.amount_fen:
        raise InvalidInput(
            f"a refund is at most the original {original.amount_fen} fen", field="amount_fen"
        )
    assert original.org_id is not None
    now = rt.now()
    payee: Owner = personal(original.person_id)
    try:
        posted = post(
            s,
            kind=TxnKind.REFUND,
            person_id=original.person_id,
            org_id=original.org_id,
            card_id=original.card_id,
            actor_staff_id=actor.staff_id,
            refund_of_id=original.id,
            now=now,
            legs=[
                Leg(payee, amount_fen),
                Leg(institution(original.org_id, person_id=original.person_id), -amount_fen, True),
            ],
        )
    except IntegrityError:  # the refund's unique index: another refund won the race
        raise Conflict("this settlement was refunded at the same moment") from None
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.refunded",
        subject_type="ledger_txn",
        subject_id=posted.txn_id,
        person_id=original.person_id,
        detail={"amount_fen": amount_fen, "settlement_id": original.id},
    )
    card = s.get(Card, original.card_id) if original.card_id else None
    uow.commit()
    return Receipt(
        transaction_id=posted.txn_id,
        kind=TxnKind.REFUND.value,
        amount_fen=amount_fen,
        balance_fen=posted.balances[payee],
        card_id=card.id if card else 0,
        card_state=card.state if card else "unknown",
        activated=False,
        at=now,
    )
