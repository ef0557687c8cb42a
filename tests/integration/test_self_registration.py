"""Self-service registration: the consumption password is checked without counting."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sscard.access.selfservice import register
from sscard.access.tables import Login
from sscard.accounts import passwords
from sscard.accounts.tables import MedicalPassword
from sscard.audit.tables import AuditRecord
from sscard.cards.model import CardState
from sscard.core.errors import DomainError
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number

PIN = "482913"
SECRET = "my own secret 1"


def holder(world: World) -> tuple[Person, str]:
    card = world.card(CardState.ACTIVE)
    person = world.set_consumption_password(card.person_id, PIN)
    return person, card.card_number or ""


def pin_row(world: World, person_id: int) -> MedicalPassword:
    with world.rt.uow() as uow:
        row = uow.session.get(MedicalPassword, person_id)
        assert row is not None
        return row


@pytest.fixture
def keyed_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every keyed check of a card password."""
    from sscard.core.passwords import PinKey

    calls: list[str] = []
    real = PinKey.matches

    def counting(self: PinKey, stored: str, subject: str, pin: str) -> bool:
        calls.append(stored)
        return real(self, stored, subject, pin)

    monkeypatch.setattr(PinKey, "matches", counting)
    return calls


def test_the_uncounted_check_matches_only_a_usable_password_and_never_counts(
    world: World, keyed_checks: list[str]
) -> None:
    check = passwords.matches_uncounted_for_self_registration_only
    person, _ = holder(world)
    assert check(world.rt, person_id=person.id, password=PIN)
    for _ in range(5):
        assert not check(world.rt, person_id=person.id, password="111999")
    assert (pin_row(world, person.id).failed_attempts, pin_row(world, person.id).locked_at) == (
        0,
        None,
    )
    assert not check(world.rt, person_id=None, password=PIN)  # no such person
    never = world.person()
    assert not check(world.rt, person_id=never.id, password=PIN)  # never set
    assert len(keyed_checks) == 8  # one keyed check each time, whatever the case
    for _ in range(3):  # locked at a counter (P-2)
        with pytest.raises(DomainError), world.rt.uow() as uow:
            passwords.verify(
                uow, world.rt, actor=world.actor(OrgKind.OUTLET), person_id=person.id, password="0"
            )
    keyed_checks.clear()
    assert not check(world.rt, person_id=person.id, password=PIN)  # locked: refused
    assert len(keyed_checks) == 1


def test_wrong_proofs_are_audited_on_the_registration_throttle_without_secrets(
    world: World,
) -> None:
    person, card_number = holder(world)
    for id_number in (person.id_number, next_id_number()):  # the holder's, and nobody's
        with pytest.raises(DomainError) as refused:
            register(
                world.rt,
                id_number=id_number,
                card_number=card_number,
                medical_password="111999",
                password=SECRET,
                source="t",
            )
        assert refused.value.code == "not_verified"
    with world.rt.uow() as uow:
        rows = list(
            uow.session.scalars(
                select(AuditRecord).where(AuditRecord.action.like("%registration_failed"))
            )
        )
        logins = list(uow.session.scalars(select(Login)))
    assert [(r.subject_id, r.detail) for r in rows] == [
        (person.id, {"failed_attempts": 1}),
        (None, {"reason": "unknown"}),
    ]
    assert "111999" not in str([r.detail for r in rows])
    # Only the holder's row counts; an unknown ID number gets none (and never locks).
    assert [(r.person_id, r.failed_attempts) for r in logins] == [(person.id, 1)]
    assert pin_row(world, person.id).failed_attempts == 0


def test_a_password_with_the_holders_name_is_refused_only_once_the_card_is_proven(
    world: World,
) -> None:
    person, card_number = holder(world)
    attempt = {
        "id_number": person.id_number,
        "card_number": card_number,
        "password": f"{person.name} secret password",
        "source": "t",
    }
    with pytest.raises(DomainError) as unproven:
        register(world.rt, medical_password="111999", **attempt)
    assert unproven.value.code == "not_verified"  # the name is not confirmed to a stranger
    with pytest.raises(DomainError) as proven:
        register(world.rt, medical_password=PIN, **attempt)
    assert (proven.value.code, proven.value.extra["reason"]) == ("invalid_input", "contains_name")
