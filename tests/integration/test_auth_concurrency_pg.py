"""Login attempts racing on PostgreSQL with real commits: every failure counts once."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pyotp
from sqlalchemy import select

from sscard.access import staffadmin
from sscard.access.auth import login_staff
from sscard.access.model import Role
from sscard.access.selfservice import register
from sscard.access.tables import Login
from sscard.access.totp import enrol_totp, open_secret
from sscard.accounts.tables import MedicalPassword
from sscard.cards.model import CardState
from sscard.core.errors import DomainError
from sscard.register.model import OrgKind
from tests.factories import World
from tests.integration.test_concurrency_pg import committed, race

__all__ = ["committed"]

PASSWORD = "correct horse battery"


def _member(world: World) -> tuple[int, str]:
    base = world.actor(OrgKind.CENTER)
    with world.rt.uow() as uow:
        staff, _ = staffadmin.create_member(
            uow,
            world.rt,
            actor=replace(base, role=Role.ADMINISTRATOR.value),
            org_code=None,
            name="Li Lei",
            role="operator",
            login="li.lei",
            password=PASSWORD,
        )
    return staff.id, base.org_code


def _codes(results: list[object]) -> Counter[str]:
    return Counter(r.code if isinstance(r, DomainError) else "session" for r in results)


def test_parallel_wrong_passwords_all_count_and_lock_after_five(committed: World) -> None:
    world = committed
    staff_id, org = _member(world)

    def wrong() -> object:
        return login_staff(
            world.rt, org_code=org, login="li.lei", password="guess guess", totp=None, source="t"
        )

    results = race(*[wrong] * 8)
    assert _codes(results) == {"login_failed": 4, "login_locked": 4}
    with world.rt.uow() as uow:
        row = uow.session.scalar(select(Login).where(Login.staff_id == staff_id))
        assert row is not None
        assert row.failed_attempts == 5
        assert row.locked_until == world.rt.now() + timedelta(minutes=15)


def test_one_totp_code_opens_one_session_even_when_sent_twice_at_once(committed: World) -> None:
    world = committed
    staff_id, org = _member(world)
    member = replace(world.actor(OrgKind.CENTER), staff_id=staff_id)
    with world.rt.uow() as uow:
        enrol_totp(uow, world.rt, actor=member)
    with world.rt.uow() as uow:
        row = uow.session.scalar(select(Login).where(Login.staff_id == staff_id))
        assert row is not None
        assert row.totp_secret is not None
        secret = open_secret(row.totp_secret, login_id=row.id)
        row.totp_confirmed_at = world.rt.now()
        uow.commit()
    code = pyotp.TOTP(secret).at(world.rt.now())

    def attempt() -> object:
        return login_staff(
            world.rt, org_code=org, login="li.lei", password=PASSWORD, totp=code, source="t"
        )

    results = race(attempt, attempt, attempt)
    assert _codes(results) == {"session": 1, "login_failed": 2}


def test_parallel_wrong_registration_proofs_all_count_once_on_one_new_login_row(
    committed: World,
) -> None:
    world = committed
    card = world.card(CardState.ACTIVE)
    person = world.set_consumption_password(card.person_id, "482913")

    def wrong() -> object:
        return register(
            world.rt,
            id_number=person.id_number,
            card_number=card.card_number or "",
            medical_password="111999",
            password="my own secret 1",
            source="t",
        )

    results = race(*[wrong] * 8)
    assert _codes(results) == {"not_verified": 4, "login_locked": 4}
    with world.rt.uow() as uow:
        rows = list(uow.session.scalars(select(Login).where(Login.person_id == person.id)))
        assert len(rows) == 1  # made once, by whichever attempt came first
        assert rows[0].failed_attempts == 5
        assert rows[0].locked_until == world.rt.now() + timedelta(minutes=15)
        pin = uow.session.get(MedicalPassword, person.id)
        assert pin is not None
        assert (pin.failed_attempts, pin.locked_at) == (0, None)  # P-2 untouched
