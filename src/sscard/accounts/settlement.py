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

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM, Actor, require
from sscard.access.scoping import record_of_card
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
from sscard.cards.model import CardState, refuse_unusable
from sscard.cards.service import activate_card, close_old_medical_card, has_old_medical_card
from sscard.cards.tables import Card
from sscard.cards.transitions import load_card_by
from sscard.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sscard.core.policy import Channel
from sscard.db.engine import UnitOfWork
from sscard.messages import Delivery, OldMedicalCardClosed
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from sscard.runtime import Runtime

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
    card = load_card_by(s, column=Card.card_number, value=number)  # row lock: a loss report waits
    require(
        actor,
        "accounts.settle",
        record_of_card(
            card, what="card with this card number", field="card_number", presented=True
        ),
    )
    channel = Channel.PHARMACY if what is SettlementKind.PHARMACY else Channel.HOSPITAL
    activated = card.state == CardState.RECEIVED
    if activated:
        _first_use(
            uow,
            rt,
            card,
            actor=actor,
            channel=channel,
            new_password=new_password,
            old_medical_card_no=old_medical_card_no,
        )
    else:
        refuse_unusable(CardState(card.state), valid_until=card.valid_until, today=rt.today())
        has_password = passwords.has_password(s, card.person_id)
        if new_password and not password and has_password:
            raise Conflict(
                "the card is already activated (perhaps at the same moment elsewhere): pay "
                "with the consumption password",
                reason="activated_meanwhile",
            )
        if new_password and not has_password:
            # Activated without one (e.g. by the bank's financial activation): V-2.
            _set_password(
                s, rt, card, actor=actor, new_password=new_password, event="set_at_first_use"
            )
        else:
            passwords.verify(
                uow, rt, actor=actor, person_id=card.person_id, password=password or ""
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
                    card=card,
                    old_medical_card_no=old_medical_card_no,
                )
    try:
        with s.begin_nested() if activated else nullcontext():
            receipt = _debit(
                s, rt, actor=actor, card=card, what=what, amount_fen=amount_fen, activated=activated
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
        uow.session, rt, card, actor=actor, new_password=new_password, event="set_at_activation"
    )


def _set_password(
    s: Session, rt: Runtime, card: Card, *, actor: Actor, new_password: str, event: str
) -> None:
    person = s.get(Person, card.person_id)
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
    card: Card,
    what: SettlementKind,
    amount_fen: int,
    activated: bool,
) -> Receipt:
    assert actor.org_id is not None
    now = rt.now()
    payer = personal(card.person_id)
    posted = post(
        s,
        kind=TxnKind.SETTLEMENT,
        person_id=card.person_id,
        org_id=actor.org_id,
        card_id=card.id,
        actor_staff_id=actor.staff_id,
        now=now,
        detail={"kind": what.value},
        legs=[
            Leg(payer, -amount_fen),
            Leg(institution(actor.org_id, person_id=card.person_id), amount_fen, True),
        ],
    )
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.settled",
        subject_type="ledger_txn",
        subject_id=posted.txn_id,
        person_id=card.person_id,
        channel=actor.org_kind.value,
        detail={"amount_fen": amount_fen, "kind": what.value, "card_id": card.id},
    )
    return Receipt(
        transaction_id=posted.txn_id,
        kind=TxnKind.SETTLEMENT.value,
        amount_fen=amount_fen,
        balance_fen=posted.balances[payer],
        card_id=card.id,
        card_state=card.state,
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
