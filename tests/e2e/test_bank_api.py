"""The bank side over HTTP: financial activation, the financial password, masked answers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.ids import mask_bank_card
from sscard.db.idempotency import IdempotencyRecord
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World

PIN = "802461"
NEW_PIN = "735194"
WRONG = "111222"


def auth(world: World, kind: OrgKind, bank: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(kind, bank)}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _id_of(world: World, card: Card) -> str:
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
        return person.id_number


def _activate(world: World, client: TestClient, card: Card, **headers: str) -> Any:
    return client.post(
        "/bank/financial-activations",
        headers={**auth(world, OrgKind.OUTLET), **headers},
        json={
            "bank_card_number": card.bank_card_number,
            "id_number": _id_of(world, card),
            "financial_password": PIN,
        },
    )


def _check(world: World, client: TestClient, card: Card, password: str) -> Any:
    return client.post(
        "/bank/password-checks",
        headers=auth(world, OrgKind.OUTLET),
        json={"bank_card_number": card.bank_card_number, "financial_password": password},
    )


def test_v_1_bank_financial_activation_over_http_activates_the_social_application(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.RECEIVED)
    assert card.bank_card_number is not None
    response = _activate(world, client, card)
    body = ok(response)
    assert body["account"]["state"] == "active"
    assert body["account"]["password_set"] is True
    assert body["account"]["bank_card_number"] == mask_bank_card(card.bank_card_number)
    assert body["event"]["action"] == "activate"
    assert card.bank_card_number not in response.text
    assert PIN not in response.text
    center = ok(client.get(f"/cards/{card.id}", headers=auth(world, OrgKind.CENTER)))
    assert center["state"] == "active"
    assert center["financial_activated_at"] is not None
    again = _activate(world, client, card)
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    assert again.json()["current_state"] == "active"


def test_p_2_wrong_entries_count_lock_and_reset_over_http(world: World, client: TestClient) -> None:
    card = world.card(CardState.RECEIVED)
    ok(_activate(world, client, card))
    limit = world.rt.policy.passwords.max_wrong_attempts
    for n in range(1, limit + 1):
        body = ok(_check(world, client, card, WRONG))
        assert body["verified"] is False
        assert body["attempts_left"] == limit - n
        assert body["locked"] is (n == limit)
    locked = _check(world, client, card, PIN)
    assert locked.status_code == 423
    assert locked.headers["content-type"].startswith("application/problem+json")
    assert locked.json()["code"] == "password_locked"
    reset = ok(
        client.post(
            "/bank/password-resets",
            headers=auth(world, OrgKind.OUTLET),
            json={
                "bank_card_number": card.bank_card_number,
                "id_number": _id_of(world, card),
                "new_password": NEW_PIN,
            },
        )
    )
    assert reset["account"]["password_locked"] is False
    assert reset["event"]["detail"] == {"unlocked": True}
    assert ok(_check(world, client, card, NEW_PIN))["verified"] is True


def test_p_3_change_over_http_refuses_a_wrong_old_password(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.RECEIVED)
    ok(_activate(world, client, card))
    bank_host = auth(world, OrgKind.BANK, "ICBC")
    wrong = client.post(
        "/bank/password-changes",
        headers=bank_host,
        json={
            "bank_card_number": card.bank_card_number,
            "old_password": WRONG,
            "new_password": NEW_PIN,
        },
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "wrong_password"
    assert wrong.json()["attempts_left"] == world.rt.policy.passwords.max_wrong_attempts - 1
    ok(
        client.post(
            "/bank/password-changes",
            headers=bank_host,
            json={
                "bank_card_number": card.bank_card_number,
                "old_password": PIN,
                "new_password": NEW_PIN,
            },
        )
    )
    assert ok(_check(world, client, card, NEW_PIN))["verified"] is True


def test_c_1_answers_mask_numbers_and_never_carry_passwords(
    world: World, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    card = world.card(CardState.RECEIVED)
    assert card.bank_card_number is not None
    holder = _id_of(world, card)
    texts = [_activate(world, client, card).text, _check(world, client, card, WRONG).text]
    found = client.post(
        "/bank/accounts/search",
        headers=auth(world, OrgKind.OUTLET),
        json={"bank_card_number": card.bank_card_number},
    )
    body = ok(found)
    assert body["account"]["holder_id_number"] == holder[:4] + "*" * 10 + holder[-4:]
    assert [e["action"] for e in body["events"]] == ["password_wrong", "activate", "open"]
    texts.append(found.text)
    for text in [*texts, caplog.text]:
        assert PIN not in text
        assert WRONG not in text
        assert card.bank_card_number not in text
        assert holder not in text
    other_bank = client.post(
        "/bank/accounts/search",
        headers=auth(world, OrgKind.OUTLET, "CCB"),
        json={"bank_card_number": card.bank_card_number},
    )
    assert other_bank.status_code == 404
    center = client.post(
        "/bank/accounts/search",
        headers=auth(world, OrgKind.CENTER),
        json={"bank_card_number": card.bank_card_number},
    )
    assert center.status_code == 403


def test_c_1_idempotency_key_replays_without_keeping_the_password(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.RECEIVED)
    first = ok(_activate(world, client, card, **{"Idempotency-Key": "act-1"}))
    replay = _activate(world, client, card, **{"Idempotency-Key": "act-1"})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert ok(replay) == first
    other = client.post(
        "/bank/financial-activations",
        headers={**auth(world, OrgKind.OUTLET), "Idempotency-Key": "act-1"},
        json={
            "bank_card_number": card.bank_card_number,
            "id_number": _id_of(world, card),
            "financial_password": NEW_PIN,  # another password is another request
        },
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    with world.rt.uow() as uow:
        stored = uow.session.scalars(select(IdempotencyRecord)).all()
    assert PIN not in repr([(r.fingerprint, r.response) for r in stored])


def test_v_1_only_an_outlet_activates_the_financial_application(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.RECEIVED)
    for kind in (OrgKind.PHARMACY, OrgKind.CENTER, OrgKind.BANK):
        response = client.post(
            "/bank/financial-activations",
            headers=auth(world, kind, "ICBC" if kind is OrgKind.BANK else None),
            json={
                "bank_card_number": card.bank_card_number,
                "id_number": _id_of(world, card),
                "financial_password": PIN,
            },
        )
        assert response.status_code == 403, kind
        assert response.json()["code"] == "forbidden"
