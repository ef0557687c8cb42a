"""A-5 over HTTP: an agent at a reset is refused where policy keeps it in person."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sscard.cards.model import CardState
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number


def test_a5_password_resets_by_agent_are_refused_with_the_reason(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        number = uow.session.get_one(Person, card.person_id).id_number
    agent = {"name": "李代理", "id_number": next_id_number(), "document": "power_of_attorney"}
    headers = {"Authorization": f"Bearer {world.token(OrgKind.OUTLET)}"}
    for path, body in (
        (
            "/medical-passwords/resets",
            {"card_number": card.card_number, "id_number": number, "new_password": "582914"},
        ),
        (
            "/bank/password-resets",
            {
                "bank_card_number": card.bank_card_number,
                "id_number": number,
                "new_password": "582914",
            },
        ),
    ):
        response = client.post(path, headers=headers, json={**body, "agent": agent})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "refused_by_policy"
        assert response.json()["reason"] == "in_person_only"
        assert agent["id_number"] not in response.text
