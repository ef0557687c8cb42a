"""Cardholders' self-service login: registered by proving possession of the card.

Registration takes the ID number, the card number and the card's consumption
password, and a new login password. The consumption password is checked WITHOUT
counting toward its P-2 lock (an unauthenticated caller must not be able to lock a
holder's payments): wrong proofs are counted on the person's own login row instead,
with the guarded UPDATE and the lockout of logins, so repeated wrong proofs lock
self-service registration and login for the lockout period. The row is made on the
first attempt, with a hash that never verifies, until a registration succeeds.

Every failed proof (unknown ID number, a card that is not theirs or not in their
hands, a wrong or locked consumption password) gets the same answer after the same
work. Registering again the same way sets a new login password and ends the holder's
sessions: that is how a cardholder who forgot it starts over; it never lifts a lock.
"""

from __future__ import annotations

from contextlib import suppress

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from sscard.access.auth import (
    NewSession,
    anonymous,
    attempt,
    cardholder_actor,
    count_failure,
    end_sessions,
    hash_password,
    unknown_login,
)
from sscard.access.auth_model import (
    NO_PASSWORD_HASH,
    LoginFailed,
    check_login_password,
    has_usable_password,
    is_locked,
    locked_error,
    lockout_until,
)
from sscard.access.tables import Login
from sscard.accounts.passwords import matches_uncounted_for_self_registration_only
from sscard.audit.service import record
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.errors import DomainError
from sscard.core.ids import parse_id_number
from sscard.register.service import has_id_number
from sscard.register.tables import Person
from sscard.runtime import Runtime


class NotVerified(DomainError):
    code = "not_verified"
    status = 422
    title = "Card not verified"


NOT_VERIFIED = (
    "the ID number, card number and consumption password do not prove one card in its "
    "holder's hands (a card that is lost, replaced or not yet received cannot register, nor "
    "can a locked consumption password: it is reset at an outlet with ID and card)"
)


def register(
    rt: Runtime,
    *,
    id_number: str,
    card_number: str,
    medical_password: str,
    password: str,
    source: str,
) -> int:
    """Give a cardholder a self-service login (or a new password); return the person id."""
    number = parse_id_number(id_number, field="id_number").number
    # The rules that need no holder are checked before anything is looked up; the name
    # rule only once the card is proven (else it would tell whose ID number this is).
    check_login_password(password, names=(), field="password")
    with rt.uow() as uow:
        s = uow.session
        person = s.scalar(select(Person).where(has_id_number(number)))
        card = s.scalar(select(Card).where(Card.card_number == (card_number or "").strip().upper()))
    if person is None:
        matches_uncounted_for_self_registration_only(rt, person_id=None, password=medical_password)
        _audit_unknown(rt, source)
        raise NotVerified(NOT_VERIFIED)
    actor = cardholder_actor(person, source)
    subject = ("person", person.id)
    throttle = _throttle(rt, person.id)
    if is_locked(throttle.locked_until, rt.now()):
        assert throttle.locked_until is not None
        matches_uncounted_for_self_registration_only(rt, person_id=None, password=medical_password)
        raise locked_error(throttle.locked_until)
    matched = matches_uncounted_for_self_registration_only(
        rt, person_id=person.id, password=medical_password
    )
    in_hand = (
        card is not None
        and card.person_id == person.id
        and card.state in (CardState.RECEIVED, CardState.ACTIVE)
    )
    if not (matched and in_hand):
        refusal = count_failure(
            rt,
            login_id=throttle.id,
            actor=actor,
            subject=subject,
            action="self.registration_failed",
        )
        raise NotVerified(NOT_VERIFIED) if isinstance(refusal, LoginFailed) else refusal
    check_login_password(password, names=(person.name,), field="password")
    hashed = hash_password(password)
    now = rt.now()
    with rt.uow() as uow:
        s = uow.session
        done = s.execute(
            update(Login)
            .where(
                Login.id == throttle.id,
                or_(Login.locked_until.is_(None), Login.locked_until <= now),
            )
            .values(password_hash=hashed, password_set_at=now, failed_attempts=0, locked_until=None)
            .returning(Login.id)
            .execution_options(synchronize_session=False)
        ).first()
        if done is None:  # parallel wrong proofs locked it a moment ago
            locked = s.scalar(select(Login.locked_until).where(Login.id == throttle.id))
            raise locked_error(locked or lockout_until(rt.policy.logins, now))
        ended = end_sessions(s, login_id=throttle.id, now=now, reason="password_reset")
        first = not has_usable_password(throttle.password_hash)
        record(
            s,
            actor=actor,
            at=now,
            action="self.login_registered" if first else "self.password_reset",
            subject_type="person",
            subject_id=person.id,
            person_id=person.id,
            detail={"sessions_ended": ended},
        )
        uow.commit()
    return person.id


def _throttle(rt: Runtime, person_id: int) -> Login:
    """The person's login row, which counts wrong proofs: made (without a password) if new."""
    query = select(Login).where(Login.person_id == person_id)
    with rt.uow() as uow:
        found = uow.session.scalar(query)
    if found is not None:
        return found
    now = rt.now()
    with suppress(IntegrityError), rt.uow() as uow:  # a parallel attempt may make it first
        uow.session.add(
            Login(
                person_id=person_id,
                password_hash=NO_PASSWORD_HASH,
                password_set_at=now,
                failed_attempts=0,
                created_at=now,
            )
        )
        uow.commit()
    with rt.uow() as uow:
        made = uow.session.scalar(query)
    assert made is not None
    return made


def _audit_unknown(rt: Runtime, source: str) -> None:
    with rt.uow() as uow:
        record(
            uow.session,
            actor=anonymous(source),
            at=rt.now(),
            action="self.registration_failed",
            subject_type="person",
            subject_id=None,
            detail={"reason": "unknown"},
        )
        uow.commit()


def login(rt: Runtime, *, id_number: str, password: str, source: str) -> NewSession:
    """Log a cardholder in with their ID number and self-service password.

    A person whose row has no password yet (registration attempts only) is answered
    exactly like an unknown ID number, after the same work.
    """
    number = parse_id_number(id_number, field="id_number").number
    with rt.uow() as uow:
        row = uow.session.execute(
            select(Login, Person)
            .join(Person, Person.id == Login.person_id)
            .where(has_id_number(number))
        ).first()
    if row is None or not has_usable_password(row[0].password_hash):
        raise unknown_login(rt, password=password, source=source, detail={"kind": "cardholder"})
    found, person = row
    return attempt(
        rt,
        login=found,
        actor=cardholder_actor(person, source),
        password=password,
        totp=None,
        subject=("person", person.id),
    )
