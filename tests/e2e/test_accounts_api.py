"""The medical account over HTTP: activation with password, settlement, inquiry, refunds."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World
from tests.integration.test_accounts import credit


def auth(world: World, kind: OrgKind, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {world.token(kind)}"}
    return headers | ({"Idempotency-Key": key} if key else {})


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_v_2_both_sides_set_at_activation_then_pay_inquire_refund(
    world: World, client: TestClient
) -> None:
    card = world.card("received")
    credit(world, card.person_id, 20_000)
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    activated = ok(
        client.post(
            f"/cards/{card.id}/activations",
            headers=auth(world, OrgKind.OUTLET),
            json={"channel": "outlet", "medical_password": "482913"},
        )
    )
    assert activated["card"]["state"] == "active"
    assert "482913" not in str(activated)
    body = {
        "card_number": card.card_number,
        "kind": "outpatient",
        "amount_fen": 3_000,
        "password": "482913",
    }
    missing_key = client.post("/settlements", headers=auth(world, OrgKind.HOSPITAL), json=body)
    assert missing_key.status_code == 422
    assert missing_key.json()["field"] == "Idempotency-Key"
    receipt = ok(
        client.post("/settlements", headers=auth(world, OrgKind.HOSPITAL, "v-1"), json=body), 201
    )
    assert receipt["balance_fen"] == 17_000
    replay = ok(
        client.post("/settlements", headers=auth(world, OrgKind.HOSPITAL, "v-1"), json=body), 201
    )
    assert replay["transaction_id"] == receipt["transaction_id"]
    assert replay["replayed"] is True
    wrong = client.post(
        "/settlements",
        headers=auth(world, OrgKind.HOSPITAL, "v-2"),
        json=body | {"password": "111112"},
    )
    # P-2: the same answer as the bank's financial password (one rule, both sides).
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "wrong_password"
    assert wrong.json()["attempts_left"] == world.rt.policy.passwords.max_wrong_attempts - 1
    refund = ok(
        client.post(
            f"/settlements/{receipt['transaction_id']}/refunds",
            headers=auth(world, OrgKind.HOSPITAL, "r-1"),
            json={"amount_fen": 1_000},
        ),
        201,
    )
    assert refund["balance_fen"] == 18_000
    statement = ok(
        client.post(
            "/medical-accounts/inquiries",
            headers=auth(world, OrgKind.BUREAU_WINDOW),
            json={"id_number": person.id_number},
        )
    )
    assert statement["balance_fen"] == 18_000
    assert [e["kind"] for e in statement["entries"]] == ["refund", "settlement", "contribution"]
    pharmacy = client.post(
        "/medical-accounts/inquiries",
        headers=auth(world, OrgKind.PHARMACY),
        json={"id_number": person.id_number},
    )
    assert pharmacy.status_code == 403


def test_p_2_reset_and_p_3_change_over_http(world: World, client: TestClient) -> None:
    card = world.card("received")
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    ok(
        client.post(
            f"/cards/{card.id}/activations",
            headers=auth(world, OrgKind.OUTLET),
            json={"channel": "outlet", "medical_password": "482913"},
        )
    )
    trivial = client.post(
        "/medical-passwords/changes",
        headers=auth(world, OrgKind.PHARMACY),
        json={"card_number": card.card_number, "old_password": "482913", "new_password": "111111"},
    )
    assert trivial.status_code == 422
    assert trivial.json()["code"] == "invalid_input"
    changed = ok(
        client.post(
            "/medical-passwords/changes",
            headers=auth(world, OrgKind.PHARMACY),
            json={
                "card_number": card.card_number,
                "old_password": "482913",
                "new_password": "602417",
            },
        )
    )
    assert changed["result"] == "changed"
    reset = ok(
        client.post(
            "/medical-passwords/resets",
            headers=auth(world, OrgKind.OUTLET),
            json={
                "card_number": card.card_number,
                "id_number": person.id_number,
                "new_password": "730416",
            },
        )
    )
    assert reset["result"] == "reset"


def test_v_2_outlet_sets_both_passwords_in_one_activation(world: World, client: TestClient) -> None:
    card = world.card("received")
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    outlet = auth(world, OrgKind.OUTLET)
    body = {
        "channel": "outlet",
        "medical_password": "482913",
        "financial_password": "730416",
        "id_number": person.id_number,
    }
    trivial = client.post(
        f"/cards/{card.id}/activations",
        headers=outlet,
        json=body | {"financial_password": "111111"},
    )
    assert trivial.status_code == 422
    assert trivial.json()["field"] == "financial_password"
    assert world.reload(card).state == "received"  # nothing of the activation was kept
    done = ok(client.post(f"/cards/{card.id}/activations", headers=outlet, json=body))
    assert [t["action"] for t in done["transitions"]] == ["activate"]
    fresh = world.reload(card)
    assert fresh.state == "active"
    assert fresh.financial_activated_at is not None
    account = ok(
        client.post(
            "/bank/accounts/search",
            headers=outlet,
            json={"bank_card_number": card.bank_card_number},
        )
    )
    assert account["account"]["state"] == "active"
    assert account["account"]["password_set"] is True
    check = ok(
        client.post(
            "/bank/password-checks",
            headers=outlet,
            json={"bank_card_number": card.bank_card_number, "financial_password": "730416"},
        )
    )
    assert check["verified"] is True
    assert "730416" not in str(done) + str(account) + str(check)


def test_v_2_activation_without_the_consumption_password_is_refused(
    world: World, client: TestClient
) -> None:
    card = world.card("received")
    response = client.post(
        f"/cards/{card.id}/activations",
        headers=auth(world, OrgKind.OUTLET),
        json={"channel": "outlet"},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "medical_password"
    assert world.reload(card).state == "received"
