"""Cardholders' self-service login: registered by proving possession of the card.

Registration takes the ID number, the card number and the card's consumption
password (checked by ``accounts.passwords.verify``, so wrong entries count toward
its P-2 lock) and a new login password. Registering again the same way sets a new
login password: that is how a cardholder who forgot it starts over.
"""

from __future__ import annotations

from sqlalchemy import select

from sscard.access.auth import (
    NewSession,
    attempt,
    cardholder_actor,
    end_sessions,
    hash_password,
    unknown_login,
)
from sscard.access.auth_model import check_login_password
from sscard.access.tables import Login
from sscard.accounts.passwords import verify
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
    with rt.uow() as uow:
        s = uow.session
        person = s.scalar(select(Person).where(has_id_number(number)))
        card = s.scalar(select(Card).where(Card.card_number == (card_number or "").strip().upper()))
        if (
            person is None
            or card is None
            or card.person_id != person.id
            or card.state not in (CardState.RECEIVED, CardState.ACTIVE)
        ):
            raise NotVerified(
                "the ID number and the card number do not belong to one card in its holder's "
                "hands (a card that is lost, replaced or not yet received cannot register)",
                field="card_number",
            )
    check_login_password(password, names=(person.name,), field="password")
    actor = cardholder_actor(person, source)
    verify(rt, actor=actor, person_id=person.id, password=medical_password)
    now = rt.now()
    with rt.uow() as uow:
        s = uow.session
        login = s.scalar(select(Login).where(Login.person_id == person.id))
        if login is None:
            s.add(
                Login(
                    person_id=person.id,
                    password_hash=hash_password(password),
                    password_set_at=now,
                    failed_attempts=0,
                    created_at=now,
                )
            )
            action, ended = "self.login_registered", 0
        else:
            login.password_hash, login.password_set_at = hash_password(password), now
            login.failed_attempts, login.locked_until = 0, None
            ended = end_sessions(s, login_id=login.id, now=now, reason="password_reset")
            action = "self.password_reset"
        record(
            s,
            actor=actor,
            at=now,
            action=action,
            subject_type="person",
            subject_id=person.id,
            person_id=person.id,
            detail={"sessions_ended": ended},
        )
        uow.commit()
    return person.id


def login(rt: Runtime, *, id_number: str, password: str, source: str) -> NewSession:
    """Log a cardholder in with their ID number and self-service password."""
    number = parse_id_number(id_number, field="id_number").number
    with rt.uow() as uow:
        row = uow.session.execute(
            select(Login, Person)
            .join(Person, Person.id == Login.person_id)
            .where(has_id_number(number))
        ).first()
    if row is None:
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
