"""Personal data at rest: ID and bank card numbers sealed in the database, found through
blind indexes, on both backends; tampering fails loudly; keys rotate.

The stored form is always read with raw SQL (``text``), never through the models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from sscard.access.model import SYSTEM
from sscard.accounts.imports import import_contributions
from sscard.api.app import create_app
from sscard.applications import changes
from sscard.bank import service as bank
from sscard.bank.tables import BankAccount
from sscard.cards import loss
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.errors import AlreadyExists, NotFound
from sscard.core.protect import (
    BANK,
    SOCIAL,
    DataKeyring,
    DataUnreadable,
    IndexKeyring,
    Keyrings,
    Side,
    install,
    keyrings,
    load_versions,
)
from sscard.db.models import Base
from sscard.db.rotation import rotate_data, rotate_index, status
from sscard.register import service as register
from sscard.register.importer import import_persons
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number

NEW_DATA, NEW_INDEX = bytes(range(32)), bytes(range(100, 132))


@pytest.fixture(autouse=True)
def _configured_keys() -> Iterator[None]:
    """Every test starts and ends with the keys of the configuration."""
    for side in (SOCIAL, BANK):
        install(side, None)
    yield
    for side in (SOCIAL, BANK):
        install(side, None)


def raw(world: World, sql: str, **params: Any) -> list[Any]:
    with world.rt.uow() as uow:
        return list(uow.session.execute(text(sql), params).all())


def auth(world: World, kind: OrgKind, bank_code: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(kind, bank_code)}"}


def _holder_with_card(world: World) -> tuple[Person, Card]:
    person = world.person(old_card=True)
    card = world.card(CardState.RECEIVED, person=person)
    return person, card


def test_raw_columns_hold_no_plaintext_on_either_side(world: World) -> None:
    person, card = _holder_with_card(world)
    new_number = next_id_number()
    world.change_request(
        person.id, field_name="id_number", new_value=new_number, document="户口簿变更证明"
    )
    assert card.bank_card_number is not None
    clear = {person.id_number, card.bank_card_number, new_number, "YB000000001"}
    stored = [
        *raw(
            world,
            "SELECT id_number, id_number_hash, old_medical_card_no FROM persons WHERE id = :p",
            p=person.id,
        )[0],
        *raw(
            world,
            "SELECT bank_card_number, bank_card_number_hash FROM cards WHERE id = :c",
            c=card.id,
        )[0],
        *raw(
            world,
            "SELECT old_value, new_value FROM change_requests WHERE person_id = :p",
            p=person.id,
        )[0],
        *raw(
            world,
            "SELECT bank_card_number, bank_card_number_hash, holder_id_number, "
            "holder_id_number_hash FROM bank_accounts WHERE card_id = :c",
            c=card.id,
        )[0],
    ]
    assert len(stored) == 11
    for value in stored:
        assert not any(number in value for number in clear)
        assert value.startswith(("v1:", "h1:"))
    # The two sides seal and index with their own keys (C-1): the same bank card
    # number has another blind index on the bank's side than on the center's.
    assert stored[4] != stored[8]
    # ... and the models read the plaintext back.
    with world.rt.uow() as uow:
        account = uow.session.scalar(select(BankAccount).where(BankAccount.card_id == card.id))
        assert account is not None
        assert (account.bank_card_number, account.holder_id_number) == (
            card.bank_card_number,
            person.id_number,
        )


def test_no_table_holds_a_full_id_or_bank_card_number_after_a_card_life(world: World) -> None:
    person, card = _holder_with_card(world)
    outlet = world.actor(OrgKind.OUTLET, "ICBC")
    assert card.bank_card_number is not None
    with world.rt.uow() as uow:
        bank.activate_financial(
            uow,
            world.rt,
            actor=outlet,
            bank_card_number=card.bank_card_number,
            id_number=person.id_number,
            financial_password="602418",
        )
    with world.rt.uow() as uow:
        loss.report_loss_written(uow, world.rt, actor=outlet, card_id=card.id)
    with world.rt.uow() as uow:
        new_card = loss.replace_card(uow, world.rt, actor=outlet, card_id=card.id).new_card
    world.goto(new_card.ready_on)
    produced = world.produce(new_card)
    new_number = next_id_number()
    world.change_request(
        person.id, field_name="id_number", new_value=new_number, document="户口簿变更证明"
    )
    secrets = {person.id_number, new_number, card.bank_card_number, produced.bank_card_number}
    assert None not in secrets
    leaks = []
    for t in Base.metadata.sorted_tables:
        for row in raw(world, f"SELECT * FROM {t.name}"):  # noqa: S608 - names from metadata
            text_of_row = " ".join(str(v) for v in row)
            leaks += [f"{t.name}: ...{n[-4:]}" for n in secrets if n and n in text_of_row]
    assert leaks == []


def test_id_1_person_found_by_id_number_through_every_path(world: World, tmp_path: Path) -> None:
    unit = world.unit()
    person, card = _holder_with_card(world)
    employee = world.person(unit=unit)
    lower_x = person.id_number.lower()
    with world.rt.uow() as uow:
        assert register.find_person(uow.session, lower_x).id == person.id
    with TestClient(create_app(world.rt, sweep_interval=0)) as client:
        found = client.post(
            "/persons/search",
            headers=auth(world, OrgKind.SERVICE_POINT),
            json={"id_number": person.id_number},
        )
        assert found.status_code == 200
        assert found.json()["id"] == person.id
        account = client.post(
            "/bank/accounts/search",
            headers=auth(world, OrgKind.OUTLET, "ICBC"),
            json={"bank_card_number": card.bank_card_number},
        )
        assert account.status_code == 200, account.text
        assert account.json()["account"]["card_id"] == card.id
    # Imports: contributions find the unit's person by ID number, set-based.
    contrib = tmp_path / "contrib.csv"
    contrib.write_text(f"id_number,month,amount_fen\n{employee.id_number},2026-10,15000\n")
    center = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow:
        report = import_contributions(
            uow, world.rt, actor=center, unit_code=unit.code, path=contrib
        )
    assert report.errors == []
    assert report.written == 1
    # ... and the register import refuses a registered ID number.
    persons = tmp_path / "persons.csv"
    persons.write_text(f"id_number,name\n{person.id_number},李四\n")
    with world.rt.uow() as uow:
        report = import_persons(uow, world.rt, actor=center, path=persons)
    assert [(e.line, e.field) for e in report.errors] == [(2, "id_number")]
    # A change request finds the holder of the new number and refuses it.
    other = world.person()
    with pytest.raises(AlreadyExists):
        world.change_request(
            other.id, field_name="id_number", new_value=person.id_number, document="户口簿变更证明"
        )


def test_id_1_uniqueness_refuses_a_duplicate_id_number(world: World) -> None:
    sp = world.actor(OrgKind.SERVICE_POINT)
    number = next_id_number()
    data = register.PersonInput(id_number=number, name="王五")
    with world.rt.uow() as uow:
        register.register_person(uow, world.rt, actor=sp, data=data)
    with world.rt.uow() as uow, pytest.raises(AlreadyExists):
        register.register_person(uow, world.rt, actor=sp, data=data)
    # The database itself refuses it too: the blind index carries the unique constraint.
    with world.rt.uow() as uow:
        uow.session.add(world_person_row(world, number))
        with pytest.raises(IntegrityError):
            uow.session.flush()


def world_person_row(world: World, number: str) -> Person:
    return Person(
        id_number=number,
        id_kind="citizen",
        name="赵六",
        gender="male",
        birth_date=world.rt.today(),
        status="employed",
        created_at=world.rt.now(),
        updated_at=world.rt.now(),
    )


def test_a_sealed_column_refuses_a_plaintext_comparison() -> None:
    with pytest.raises(TypeError, match="blind index"):
        select(Person.id).where(Person.id_number == "44190019900517123X")
    select(Person.id).where(Person.old_medical_card_no.is_not(None))  # NULL tests are fine


def test_a_tampered_or_moved_ciphertext_fails_loudly(world: World) -> None:
    person, card = _holder_with_card(world)
    (sealed,) = raw(world, "SELECT id_number FROM persons WHERE id = :p", p=person.id)[0]
    body = sealed[3:]
    tampered = "v1:" + body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with world.rt.uow() as uow:
        uow.session.execute(
            text("UPDATE persons SET id_number = :v WHERE id = :p"), {"v": tampered, "p": person.id}
        )
        # Another column's ciphertext, same key: bound to its column, it does not open.
        uow.session.execute(
            text("UPDATE cards SET bank_card_number = :v WHERE id = :c"),
            {"v": sealed, "c": card.id},
        )
        uow.commit()
    with world.rt.uow() as uow, pytest.raises(DataUnreadable, match=r"persons\.id_number"):
        uow.session.get(Person, person.id, populate_existing=True)
    with world.rt.uow() as uow, pytest.raises(DataUnreadable, match=r"cards\.bank_card_number"):
        uow.session.get(Card, card.id, populate_existing=True)


def test_the_wrong_key_fails_loudly_over_http(world: World) -> None:
    person = world.person()
    install(SOCIAL, Keyrings(DataKeyring({1: NEW_DATA}), keyrings(SOCIAL).index))
    with TestClient(create_app(world.rt, sweep_interval=0), raise_server_exceptions=False) as c:
        answer = c.post(
            "/persons/search",
            headers=auth(world, OrgKind.SERVICE_POINT),
            json={"id_number": person.id_number},
        )
    assert answer.status_code == 500
    assert answer.json()["code"] == "data_unreadable"
    assert person.id_number not in answer.text


def _rotating(side: Side, *, data: bool) -> Keyrings:
    """The side's configured keys plus a version 2 data or index key."""
    old_data, old_index = load_versions(side.data), load_versions(side.index)
    if data:
        return Keyrings(DataKeyring({2: NEW_DATA, **old_data}), IndexKeyring(old_index))
    return Keyrings(DataKeyring(old_data), IndexKeyring({2: NEW_INDEX, **old_index}))


def test_rotate_data_moves_every_value_to_the_new_key_and_keeps_it_readable(
    world: World,
) -> None:
    person, card = _holder_with_card(world)
    install(SOCIAL, _rotating(SOCIAL, data=True))
    install(BANK, _rotating(BANK, data=True))
    with world.rt.uow() as uow:
        before = {r.name: r for r in status(uow.session)}
    assert before["persons.id_number"].by_version[1] >= 1
    assert before["bank_accounts.bank_card_number"].behind >= 1
    done = rotate_data(world.rt, actor=SYSTEM, batch=1)  # one row per transaction
    assert done["persons.id_number"] == before["persons.id_number"].behind
    with world.rt.uow() as uow:
        after = status(uow.session)
    assert all(r.behind == 0 for r in after), [(r.name, r.by_version) for r in after]
    assert rotate_data(world.rt, actor=SYSTEM) == dict.fromkeys(done, 0)  # safe to re-run
    # The old key can go: every value opens under version 2 alone.
    for side in (SOCIAL, BANK):
        now = keyrings(side)
        install(side, Keyrings(DataKeyring({2: NEW_DATA}), now.index))
    with world.rt.uow() as uow:
        s = uow.session
        fresh = s.get(Person, person.id, populate_existing=True)
        assert fresh is not None
        assert fresh.id_number == person.id_number
        assert fresh.old_medical_card_no == "YB000000001"
        account = s.scalar(select(BankAccount).where(BankAccount.card_id == card.id))
        assert account is not None
        assert account.bank_card_number == card.bank_card_number
    (stored,) = raw(world, "SELECT id_number FROM persons WHERE id = :p", p=person.id)[0]
    assert stored.startswith("v2:")


def test_rotate_index_keeps_every_lookup_working_during_and_after(world: World) -> None:
    person, card = _holder_with_card(world)
    assert card.bank_card_number is not None
    install(SOCIAL, _rotating(SOCIAL, data=False))
    install(BANK, _rotating(BANK, data=False))
    # During the switch: old hashes still match, new rows get version 2.
    newcomer = world.person()
    with world.rt.uow() as uow:
        assert register.find_person(uow.session, person.id_number).id == person.id
        assert register.find_person(uow.session, newcomer.id_number).id == newcomer.id
    (h,) = raw(world, "SELECT id_number_hash FROM persons WHERE id = :p", p=newcomer.id)[0]
    assert h.startswith("h2:")
    done = rotate_index(world.rt, actor=SYSTEM, batch=2)
    assert done["persons.id_number_hash"] >= 1
    with world.rt.uow() as uow:
        assert all(r.behind == 0 for r in status(uow.session))
    for side in (SOCIAL, BANK):
        now = keyrings(side)
        install(side, Keyrings(now.data, IndexKeyring({2: NEW_INDEX})))
    with world.rt.uow() as uow:
        s = uow.session
        assert register.find_person(s, person.id_number).id == person.id
        found = bank.find_account(
            s, actor=world.actor(OrgKind.OUTLET, "ICBC"), bank_card_number=card.bank_card_number
        )
        assert found.account.card_id == card.id
    # The uniqueness holds under the new key too.
    with world.rt.uow() as uow, pytest.raises(AlreadyExists):
        register.register_person(
            uow,
            world.rt,
            actor=world.actor(OrgKind.SERVICE_POINT),
            data=register.PersonInput(id_number=person.id_number, name="王五"),
        )


def test_id_4_an_approved_id_number_change_moves_the_blind_index(world: World) -> None:
    person = world.person()
    old_number, new_number = person.id_number, next_id_number()
    sp, center = world.actor(OrgKind.SERVICE_POINT), world.actor(OrgKind.CENTER, role="supervisor")
    req = world.change_request(
        person.id, field_name="id_number", new_value=new_number, document="户口簿变更证明"
    )
    with world.rt.uow() as uow:
        changes.decide(uow, world.rt, actor=sp, request_id=req.id, action="submit")
    with world.rt.uow() as uow:
        changes.decide(uow, world.rt, actor=center, request_id=req.id, action="approve")
    with world.rt.uow() as uow:
        assert register.find_person(uow.session, new_number).id == person.id
        with pytest.raises(NotFound):
            register.find_person(uow.session, old_number)
    # The old number is free again, the new one taken.
    with world.rt.uow() as uow, pytest.raises(AlreadyExists):
        register.register_person(
            uow, world.rt, actor=sp, data=register.PersonInput(id_number=new_number, name="王五")
        )
    with world.rt.uow() as uow:
        register.register_person(
            uow, world.rt, actor=sp, data=register.PersonInput(id_number=old_number, name="王五")
        )
