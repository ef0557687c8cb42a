"""The medical consumption password (P-1 to P-3, V-2): set, verify, lock, reset, change.

Wrong entries are counted in a transaction of their own, so a refused payment still
counts its wrong password; after the policy's number of consecutive wrong entries the
password is locked until it is reset at an outlet with ID and card (P-2). The one
check that does not count (``matches_uncounted_for_self_registration_only``) is for
self-service registration, which throttles on its own counter; never for a counter.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import (
    Actor,
    Agent,
    RecordScope,
    Service,
    check_agent,
    require,
    require_authorised,
    require_scope,
)
from sscard.access.scoping import record_of_card
from sscard.accounts.model import CardNotUsable
from sscard.accounts.tables import MedicalPassword
from sscard.audit.service import record
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.ids import parse_id_number
from sscard.core.keys import SOCIAL, load_key
from sscard.core.passwords import KeyedPasswords, check_new_password
from sscard.core.policy import AgentAct
from sscard.db.engine import UnitOfWork, is_postgres
from sscard.register.service import granted
from sscard.register.tables import Person
from sscard.runtime import Runtime


class WrongPassword(DomainError):
    code = "wrong_password"
    status = 401
    title = "Wrong password"


class PasswordLocked(DomainError):
    code = "password_locked"
    status = 423
    title = "Password locked"


class PasswordNotSet(DomainError):
    code = "password_not_set"
    status = 409
    title = "No consumption password yet"


@cache
def _keyed() -> KeyedPasswords:
    return KeyedPasswords(load_key(SOCIAL))


def set_password(
    s: Session,
    rt: Runtime,
    *,
    actor: Actor,
    person: Person,
    password: str,
    field: str,
    event: str,
    agent: Agent | None = None,
) -> None:
    """Store a new consumption password for ``person`` (inside the caller's transaction)."""
    check_new_password(password, birth_date=person.birth_date, field=field)
    row = s.get(MedicalPassword, person.id)
    hashed = _keyed().hash(password)
    if row is None:
        s.add(
            MedicalPassword(
                person_id=person.id, password_hash=hashed, failed_attempts=0, set_at=rt.now()
            )
        )
    else:
        row.password_hash, row.failed_attempts, row.locked_at = hashed, 0, None
        row.set_at = rt.now()
    record(
        s,
        actor=actor,
        at=rt.now(),
        action=f"medical_password.{event}",
        subject_type="person",
        subject_id=person.id,
        person_id=person.id,
        detail={"agent": agent.record()} if agent else None,
    )


def has_password(rt: Runtime, person_id: int) -> bool:
    with rt.uow() as uow:
        return uow.session.get(MedicalPassword, person_id) is not None


def verify(rt: Runtime, *, actor: Actor, person_id: int, password: str) -> None:
    """Check the consumption password; count a wrong one in its own transaction.

    The row is locked while it is checked, so parallel wrong entries all count and
    none can clear a lock another one set.
    """
    limit = rt.policy.passwords.max_wrong_attempts
    with rt.uow() as uow:
        s = uow.session
        q = select(MedicalPassword).where(MedicalPassword.person_id == person_id)
        if is_postgres(s):
            q = q.with_for_update()
        row = s.scalar(q.execution_options(populate_existing=True))
        if row is None:
            raise PasswordNotSet(
                "the consumption password was never set: it is set at activation (V-2), or at "
                "an outlet with ID and card"
            )
        if row.locked_at is not None or row.failed_attempts >= limit:
            raise PasswordLocked(
                "the consumption password is locked after repeated wrong entries: unlock and "
                "reset it at an outlet of the issuing bank with ID and card (P-2)"
            )
        if _keyed().verify(row.password_hash, password or ""):
            if row.failed_attempts:
                row.failed_attempts = 0
                uow.commit()
            return
        row.failed_attempts += 1
        failed = row.failed_attempts
        locked = failed >= limit
        if locked:
            row.locked_at = rt.now()
        record(
            s,
            actor=actor,
            at=rt.now(),
            action="medical_password.locked" if locked else "medical_password.wrong",
            subject_type="person",
            subject_id=person_id,
            person_id=person_id,
            detail={"failed_attempts": failed},
        )
        uow.commit()
    if locked:
        raise PasswordLocked(
            f"{limit} wrong entries in a row: the consumption password is now locked; unlock "
            "and reset it at an outlet with ID and card (P-2)"
        )
    raise WrongPassword(
        f"wrong consumption password; {limit - failed} tries left", tries_left=limit - failed
    )


@cache
def _dummy_hash() -> str:
    return _keyed().hash(secrets.token_urlsafe(16))


def matches_uncounted_for_self_registration_only(
    rt: Runtime, *, person_id: int | None, password: str
) -> bool:
    """NOT FOR COUNTERS OR PAYMENTS (use ``verify``): whether ``password`` is the person's
    consumption password, WITHOUT counting a wrong one toward the P-2 lock.

    Only self-service registration may use this, because it counts wrong proofs on
    its own throttle (the person's login lockout) instead: an unauthenticated caller
    must not be able to lock a cardholder's consumption password. A password that is
    locked (P-2) or was never set never matches. Every call does one keyed argon2id
    check (``person_id=None``, an unknown person, included), so the answer's timing
    does not tell the cases apart.
    """
    limit = rt.policy.passwords.max_wrong_attempts
    row = None
    if person_id is not None:
        with rt.uow() as uow:
            row = uow.session.get(MedicalPassword, person_id)
    usable = row is not None and row.locked_at is None and row.failed_attempts < limit
    stored = row.password_hash if usable and row is not None else _dummy_hash()
    matched = _keyed().verify(stored, password or "")
    return usable and matched


def _refuse_dead(card: Card) -> None:
    """Only the card in the holder's hands changes or resets the password (not a lost,
    replaced or destroyed one)."""
    if card.state not in (CardState.RECEIVED, CardState.ACTIVE):
        raise CardNotUsable(
            f"the card is '{card.state}': the password is set with a card in hand",
            card_state=card.state,
        )


def _holder(s: Session, card_number: str, id_number: str) -> tuple[Card, Person]:
    card = s.scalar(select(Card).where(Card.card_number == card_number.strip().upper()))
    if card is None:
        raise InvalidInput("no card with this card number", field="card_number")
    person = s.get(Person, card.person_id)
    assert person is not None
    if parse_id_number(id_number, field="id_number").number != person.id_number:
        raise InvalidInput(
            "the ID document does not belong to this card's holder", field="id_number"
        )
    return card, person


def _presented(card: Card) -> RecordScope:
    return record_of_card(
        card, what="card with this card number", field="card_number", presented=True
    )


def reset(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_number: str,
    id_number: str,
    new_password: str,
    agent: Agent | None = None,
) -> Person:
    """P-2: unlock and reset at an outlet of the card's bank, with ID and card."""
    require(actor, "medical_password.reset")
    check_agent(rt.policy, AgentAct.PASSWORD_RESET, agent)
    s = uow.session
    card, person = _holder(s, card_number, id_number)
    require_scope(actor, "medical_password.reset", _presented(card))
    _refuse_dead(card)
    set_password(
        s,
        rt,
        actor=actor,
        person=person,
        password=new_password,
        field="new_password",
        event="reset",
        agent=agent,
    )
    uow.commit()
    return person


def change(
    rt: Runtime, *, actor: Actor, card_number: str, old_password: str, new_password: str
) -> int:
    """P-3: change at an authorised pharmacy, grassroots platform or outlet.

    The old password is checked (and a wrong one counted) before the change's own
    transaction begins, so the two never wait on each other.
    """
    require(actor, "medical_password.change")
    with rt.uow() as uow:
        require_authorised(actor, Service.PASSWORD_CHANGE, granted(uow.session, actor))
        card = uow.session.scalar(
            select(Card).where(Card.card_number == card_number.strip().upper())
        )
        if card is None:
            raise InvalidInput("no card with this card number", field="card_number")
        require_scope(actor, "medical_password.change", _presented(card))
        _refuse_dead(card)
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    check_new_password(new_password, birth_date=person.birth_date, field="new_password")
    verify(rt, actor=actor, person_id=person.id, password=old_password)
    with rt.uow() as uow:
        fresh = uow.session.get(Person, person.id)
        assert fresh is not None
        set_password(
            uow.session,
            rt,
            actor=actor,
            person=fresh,
            password=new_password,
            field="new_password",
            event="changed",
        )
        uow.commit()
    return person.id


def set_at_activation(rt: Runtime, actor: Actor, password: str) -> Callable[[Session, Card], None]:
    """V-2: the consumption password is set together with the activation."""

    def hook(s: Session, card: Card) -> None:
        person = s.get(Person, card.person_id)
        assert person is not None
        set_password(
            s,
            rt,
            actor=actor,
            person=person,
            password=password,
            field="medical_password",
            event="set_at_activation",
        )

    return hook
