"""Settlement at designated hospitals and pharmacies, and refunds (C-4, V-1, V-2, R-2)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM, Actor, require
from sscard.accounts import passwords
from sscard.accounts.ledger import Leg, account, balance, post
from sscard.accounts.model import (
    AccountKind,
    SettlementKind,
    TxnKind,
    check_amount,
    refuse_unusable,
)
from sscard.accounts.tables import LedgerTxn, MedicalPassword
from sscard.audit.service import record
from sscard.cards.model import CardState
from sscard.cards.service import activate_card, close_old_medical_card, has_old_medical_card
from sscard.cards.tables import Card
from sscard.cards.transitions import load_card
from sscard.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from sscard.core.policy import Channel
from sscard.messages import Delivery, OldMedicalCardClosed
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from sscard.runtime import Runtime

KINDS_OF = {
    OrgKind.HOSPITAL: {SettlementKind.OUTPATIENT, SettlementKind.INPATIENT},
    OrgKind.PHARMACY: {SettlementKind.PHARMACY},
}


class KeyReused(InvalidInput):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Receipt:
    """What the institution prints: the payment, the balance after it, the card."""

    txn: LedgerTxn
    balance_fen: int
    card_id: int
    card_state: str
    activated: bool
    replayed: bool


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def _earlier(rt: Runtime, org_id: int, key: str, fingerprint: str) -> LedgerTxn | None:
    with rt.uow() as uow:
        txn = uow.session.scalar(
            select(LedgerTxn).where(LedgerTxn.org_id == org_id, LedgerTxn.request_key == key)
        )
    if txn is not None and txn.request_fingerprint != fingerprint:
        raise KeyReused(
            "this idempotency key was used for another payment; use a new key",
            field="idempotency_key",
        )
    return txn


def _receipt(rt: Runtime, txn: LedgerTxn, *, replayed: bool, activated: bool) -> Receipt:
    """The receipt; a replay shows the balance right after the first answer."""
    with rt.uow() as uow:
        s = uow.session
        card = s.get(Card, txn.card_id) if txn.card_id else None
        return Receipt(
            txn=txn,
            balance_fen=int(txn.detail.get("balance_after_fen", 0)),
            card_id=card.id if card else 0,
            card_state=card.state if card else "unknown",
            activated=activated,
            replayed=replayed,
        )


def _replay(rt: Runtime, org_id: int, key: str, fingerprint: str) -> Receipt | None:
    """The first answer to this key, if there was one."""
    earlier = _earlier(rt, org_id, key, fingerprint)
    return None if earlier is None else _receipt(rt, earlier, replayed=True, activated=False)


def _post_once(
    rt: Runtime,
    *,
    org_id: int,
    key: str,
    fingerprint: str,
    write: Callable[[Session], LedgerTxn],
    activated: bool = False,
    race: DomainError | None = None,
) -> Receipt:
    """Run ``write`` in one transaction; if the same key won a race meanwhile, answer
    with its payment. A unique violation that is not that key's is ``race`` (or raised)."""
    try:
        with rt.uow() as uow:
            txn = write(uow.session)
            uow.commit()
    except IntegrityError:
        replay = _replay(rt, org_id, key, fingerprint)
        if replay is not None:
            return replay
        if race is not None:
            raise race from None
        raise
    return _receipt(rt, txn, replayed=False, activated=activated)


def _key(value: str) -> str:
    key = (value or "").strip()
    if not key or len(key) > 255:
        raise InvalidInput(
            "every payment carries an idempotency_key of 1 to 255 characters, "
            "the same on every retry",
            field="idempotency_key",
        )
    return key


def settle(
    rt: Runtime,
    *,
    actor: Actor,
    card_number: str,
    kind: str,
    amount_fen: int,
    idempotency_key: str,
    password: str | None = None,
    new_password: str | None = None,
    old_medical_card_no: str | None = None,
) -> Receipt:
    """Pay from the medical personal account; a first use activates the card (V-1).

    A retried call with the same idempotency key returns the first receipt and never
    debits twice.
    """
    require(actor, "accounts.settle")
    try:
        what = SettlementKind(kind)
    except ValueError:
        raise InvalidInput("kind is outpatient, inpatient or pharmacy", field="kind") from None
    if what not in KINDS_OF.get(actor.org_kind, set()):
        raise Forbidden(f"a {actor.org_kind.value} does not settle '{what}'")
    check_amount(amount_fen)
    key = _key(idempotency_key)
    number = (card_number or "").strip().upper()
    fingerprint = _fingerprint(number, what.value, amount_fen)
    assert actor.org_id is not None
    replay = _replay(rt, actor.org_id, key, fingerprint)
    if replay is not None:
        return replay
    with rt.uow() as uow:
        card = uow.session.scalar(select(Card).where(Card.card_number == number))
        if card is None:
            raise NotFound("no card with this card number", field="card_number")
        first_use = card.state == CardState.RECEIVED
        person_id = card.person_id
    activated = False
    channel = Channel.PHARMACY if what is SettlementKind.PHARMACY else Channel.HOSPITAL
    if first_use:
        if not new_password:
            raise InvalidInput(
                "first use of this card: the holder sets the consumption password now "
                "(new_password), which activates the card (V-1, V-2)",
                field="new_password",
            )
        # The registration activates the card even if the payment then fails (V-1).
        _activate_on_first_use(
            rt,
            actor=actor,
            card_id=card.id,
            channel=channel,
            new_password=new_password,
            old_medical_card_no=old_medical_card_no,
        )
        activated = True
    else:
        refuse_unusable(CardState(card.state))
        if new_password and not passwords.has_password(rt, person_id):
            # Activated without one (e.g. by the bank's financial activation): V-2.
            _first_password(rt, actor=actor, card_id=card.id, new_password=new_password)
        else:
            passwords.verify(rt, actor=actor, person_id=person_id, password=password or "")
    return _post_once(
        rt,
        org_id=actor.org_id,
        key=key,
        fingerprint=fingerprint,
        activated=activated,
        write=lambda s: _debit(
            s,
            rt,
            actor=actor,
            card_id=card.id,
            what=what,
            amount_fen=amount_fen,
            key=key,
            fingerprint=fingerprint,
            old_medical_card_no=old_medical_card_no,
        ),
    )


def _activate_on_first_use(
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    channel: Channel,
    new_password: str,
    old_medical_card_no: str | None,
) -> None:
    with rt.uow() as uow:
        s = uow.session
        card = load_card(s, card_id)
        if card.state != CardState.RECEIVED:
            raise Conflict(
                "the card was activated at the same moment elsewhere; retry with the "
                "consumption password",
                reason="activated_meanwhile",
            )
        person = s.get(Person, card.person_id)
        assert person is not None
        activate_card(
            s,
            rt,
            card,
            actor=actor,
            channel=channel,
            agent=None,
            old_medical_card_no=old_medical_card_no,
        )
        passwords.set_password(
            s,
            rt,
            actor=actor,
            person=person,
            password=new_password,
            field="new_password",
            event="set_at_activation",
        )
        uow.commit()


def _first_password(rt: Runtime, *, actor: Actor, card_id: int, new_password: str) -> None:
    with rt.uow() as uow:
        s = uow.session
        card = load_card(s, card_id)
        refuse_unusable(CardState(card.state))
        person = s.get(Person, card.person_id)
        assert person is not None
        if s.get(MedicalPassword, person.id) is not None:
            raise Conflict(
                "a consumption password was set at the same moment; retry with it",
                reason="password_set_meanwhile",
            )
        passwords.set_password(
            s,
            rt,
            actor=actor,
            person=person,
            password=new_password,
            field="new_password",
            event="set_at_first_use",
        )
        uow.commit()


def _debit(
    s: Session,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    what: SettlementKind,
    amount_fen: int,
    key: str,
    fingerprint: str,
    old_medical_card_no: str | None,
) -> LedgerTxn:
    now = rt.now()
    card = load_card(s, card_id)  # row lock: a racing loss report waits, or wins first
    refuse_unusable(CardState(card.state))
    person = s.get(Person, card.person_id)
    assert person is not None
    if what is SettlementKind.PHARMACY and old_medical_card_no and has_old_medical_card(person):
        # V-1: an old card read at a pharmacy later still hands over its balance.
        close_old_medical_card(
            s, rt, actor=actor, person=person, card=card, old_medical_card_no=old_medical_card_no
        )
    personal = account(s, AccountKind.PERSONAL, person_id=person.id, now=now)
    assert actor.org_id is not None
    institution = account(s, AccountKind.INSTITUTION, org_id=actor.org_id, now=now)
    txn = post(
        s,
        kind=TxnKind.SETTLEMENT,
        person_id=person.id,
        org_id=actor.org_id,
        card_id=card.id,
        actor_staff_id=actor.staff_id,
        request_key=key,
        fingerprint=fingerprint,
        now=now,
        detail={"kind": what.value},
        legs=[Leg(personal.id, -amount_fen), Leg(institution.id, amount_fen, True)],
    )
    # The receipt's balance, kept so that a replay shows the first answer.
    txn.detail = {**txn.detail, "balance_after_fen": balance(s, personal.id)}
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.settled",
        subject_type="ledger_txn",
        subject_id=txn.id,
        person_id=person.id,
        channel=actor.org_kind.value,
        detail={"amount_fen": amount_fen, "kind": what.value, "card_id": card.id},
    )
    return txn


def move_old_card_balance(delivery: Delivery, message: OldMedicalCardClosed) -> None:
    """V-1 at a pharmacy: the closed old card's balance moves to the personal account."""
    s, actor = delivery.session, delivery.actor
    now = message.at
    old = account(s, AccountKind.OLD_CARD, person_id=message.person_id, now=now)
    amount = balance(s, old.id)
    if amount <= 0:
        return
    personal = account(s, AccountKind.PERSONAL, person_id=message.person_id, now=now)
    txn = post(
        s,
        kind=TxnKind.OLD_CARD_TRANSFER,
        person_id=message.person_id,
        card_id=message.card_id,
        actor_staff_id=actor.staff_id,
        org_id=actor.org_id,
        now=now,
        legs=[Leg(old.id, -amount), Leg(personal.id, amount)],
    )
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.old_card_transferred",
        subject_type="ledger_txn",
        subject_id=txn.id,
        person_id=message.person_id,
        detail={"amount_fen": amount},
    )


def refund(
    rt: Runtime, *, actor: Actor, settlement_id: int, amount_fen: int, idempotency_key: str
) -> Receipt:
    """Refund a settlement once, for at most its amount, at the institution that took it."""
    require(actor, "accounts.settle")
    check_amount(amount_fen)
    key = _key(idempotency_key)
    assert actor.org_id is not None
    fingerprint = _fingerprint("refund", settlement_id, amount_fen)
    replay = _replay(rt, actor.org_id, key, fingerprint)
    if replay is not None:
        return replay
    return _post_once(
        rt,
        org_id=actor.org_id,
        key=key,
        fingerprint=fingerprint,
        race=Conflict("this settlement was refunded at the same moment"),
        write=lambda s: _refund_in(
            s,
            rt,
            actor=actor,
            settlement_id=settlement_id,
            amount_fen=amount_fen,
            key=key,
            fingerprint=fingerprint,
        ),
    )


def _refund_in(
    s: Session,
    rt: Runtime,
    *,
    actor: Actor,
    settlement_id: int,
    amount_fen: int,
    key: str,
    fingerprint: str,
) -> LedgerTxn:
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
    now = rt.now()
    personal = account(s, AccountKind.PERSONAL, person_id=original.person_id, now=now)
    institution = account(s, AccountKind.INSTITUTION, org_id=actor.org_id, now=now)
    txn = post(
        s,
        kind=TxnKind.REFUND,
        person_id=original.person_id,
        org_id=actor.org_id,
        card_id=original.card_id,
        actor_staff_id=actor.staff_id,
        request_key=key,
        fingerprint=fingerprint,
        refund_of_id=original.id,
        now=now,
        legs=[Leg(personal.id, amount_fen), Leg(institution.id, -amount_fen, True)],
    )
    txn.detail = {**txn.detail, "balance_after_fen": balance(s, personal.id)}
    record(
        s,
        actor=actor,
        at=now,
        action="medical_account.refunded",
        subject_type="ledger_txn",
        subject_id=txn.id,
        person_id=original.person_id,
        detail={"amount_fen": amount_fen, "settlement_id": original.id},
    )
    return txn
