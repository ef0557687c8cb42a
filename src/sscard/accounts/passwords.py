"""The medical consumption password (P-1 to P-3, V-2): set, verify, lock, reset, change.

The stored value is a keyed verification value under the social side's PIN key
(``core.passwords.PinKey``, bound to the person). A wrong entry is counted, audited and
committed even though the request is refused; after the policy's number of
consecutive wrong entries the password is locked until it is reset at an outlet with
ID and card (P-2, the same rule as the bank's financial password). The one check that
does not count (``matches_uncounted_for_self_registration_only``) is for self-service
registration, which throttles on its own counter; never for a counter.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
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
from sscard.accounts.tables import MedicalPassword
from sscard.audit.service import record
from sscard.cards import checks
from sscard.cards.model import CardNotUsable, CardState
from sscard.cards.tables import Card
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.ids import parse_id_number
from sscard.core.keys import SOCIAL, load_key
from sscard.core.passwords import (
    PasswordLocked,
    PinKey,
    WrongPassword,
    check_new_password,
    enter_pin,
)
from sscard.core.policy import AgentAct
from sscard.db.base import table
from sscard.db.engine import UnitOfWork
from sscard.db.statements import Prepared
from sscard.register.service import granted
from sscard.register.tables import Person
from sscard.runtime import Runtime

WHAT = "consumption password"
_PASSWORDS = table(MedicalPassword)
_P = _PASSWORDS.c
# The row an entry is checked against, locked (PostgreSQL) so parallel entries all count.
_ENTRY = Prepared(
    select(_P.password_hash, _P.failed_attempts, _P.locked_at)
    .where(_P.person_id == bindparam("person_id"))
    .with_for_update()
)


class PasswordNotSet(DomainError):
    code = "password_not_set"
    status = 409
    title = "No consumption password yet"


@cache
def _key() -> PinKey:
    return PinKey(load_key(SOCIAL))


def subject_of(person_id: int) -> str:
    """What a person's consumption password is bound to."""
    return f"person:{person_id}"


def verifier(person_id: int, password: str) -> str:
    """The stored form of ``password`` for ``person_id`` (bulk loaders use it too)."""
    return _key().verifier(subject_of(person_id), password)


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
    stored = verifier(person.id, password)
    if row is None:
        s.add(
            MedicalPassword(
                person_id=person.id, password_hash=stored, failed_attempts=0, set_at=rt.now()
            )
        )
    else:
        row.password_hash, row.failed_attempts, row.locked_at = stored, 0, None
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


def has_password(s: Session, person_id: int) -> bool:
    found = s.connection().execute(select(_P.person_id).where(_P.person_id == person_id))
    return found.first() is not None


# A card with its holder's password row, both locked (a payment's first statement).
WITH_CARD = Prepared(
    select(*checks.BY_NUMBER.selected_columns, _P.password_hash, _P.failed_attempts, _P.locked_at)
    .select_from(table(Card).join(_PASSWORDS, _P.person_id == table(Card).c.person_id))
    .where(table(Card).c.card_number == bindparam("number"))
    .with_for_update()
)


def verify(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    person_id: int,
    password: str,
    row: Any = None,
) -> None:
    """Check the consumption password in the caller's unit of work (P-2).

    The row is locked while it is checked, so parallel wrong entries all count and none
    can clear a lock another one set. A right entry leaves the unit open for the caller's
    change; a wrong one is counted and audited, the unit is committed, and the refusal
    raised.
    """
    s = uow.session
    limit = rt.policy.passwords.max_wrong_attempts
    if row is None:
        row = _ENTRY.first(s, {"person_id": person_id})
    if row is None:
        raise PasswordNotSet(
            "the consumption password was never set: it is set at activation (V-2), or at "
            "an outlet with ID and card"
        )
    if row.locked_at is not None or row.failed_attempts >= limit:
        raise PasswordLocked(what=WHAT, field="password")
    key = _key()
    right = key.matches(row.password_hash, subject_of(person_id), password or "")
    entry = enter_pin(right=right, failed_attempts=row.failed_attempts, max_wrong=limit)
    changes: dict[str, Any] = {}
    if entry.verified:
        if row.failed_attempts:
            changes["failed_attempts"] = 0
        if key.needs_upgrade(row.password_hash):
            changes["password_hash"] = verifier(person_id, password)
    else:
        changes["failed_attempts"] = entry.failed_attempts
        if entry.locked:
            changes["locked_at"] = rt.now()
    if changes:
        s.connection().execute(
            update(_PASSWORDS)
            .where(_P.person_id == person_id)
            .values(**changes, version=_P.version + 1)
        )
    if entry.verified:
        return
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="medical_password.locked" if entry.locked else "medical_password.wrong",
        subject_type="person",
        subject_id=person_id,
        person_id=person_id,
        detail={"failed_attempts": entry.failed_attempts},
    )
    uow.commit()
    if entry.locked:
        raise PasswordLocked(what=WHAT, field="password", just_now=True)
    raise WrongPassword(entry, what=WHAT, field="password")


def matches_uncounted_for_self_registration_only(
    rt: Runtime, *, person_id: int | None, password: str
) -> bool:
    """NOT FOR COUNTERS OR PAYMENTS (use ``verify``): whether ``password`` is the person's
    consumption password, WITHOUT counting a wrong one toward the P-2 lock.

    Only self-service registration may use this, because it counts wrong proofs on
    its own throttle (the person's login lockout) instead: an unauthenticated caller
    must not be able to lock a cardholder's consumption password. A password that is
    locked (P-2) or was never set never matches. Every call computes one verification
    value (``person_id=None``, an unknown person, included), so the work does not tell
    the cases apart.
    """
    limit = rt.policy.passwords.max_wrong_attempts
    row = None
    if person_id is not None:
        with rt.uow() as uow:
            row = uow.session.get(MedicalPassword, person_id)
    usable = row is not None and row.locked_at is None and row.failed_attempts < limit
    if not usable or row is None or person_id is None:
        _key().matches(verifier(0, "-"), subject_of(0), password or "")
        return False
    return _key().matches(row.password_hash, subject_of(person_id), password or "")


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
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_number: str,
    old_password: str,
    new_password: str,
) -> int:
    """P-3: change at an authorised pharmacy, grassroots platform or outlet, with the
    old password (a counted entry, P-2), in one unit of work."""
    require(actor, "medical_password.change")
    s = uow.session
    require_authorised(actor, Service.PASSWORD_CHANGE, granted(s, actor))
    card = s.scalar(select(Card).where(Card.card_number == card_number.strip().upper()))
    if card is None:
        raise InvalidInput("no card with this card number", field="card_number")
    require_scope(actor, "medical_password.change", _presented(card))
    _refuse_dead(card)
    person = s.get(Person, card.person_id)
    assert person is not None
    # A new password that would be refused is refused before the old one is counted.
    check_new_password(new_password, birth_date=person.birth_date, field="new_password")
    verify(uow, rt, actor=actor, person_id=person.id, password=old_password)
    set_password(
        s,
        rt,
        actor=actor,
        person=person,
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
