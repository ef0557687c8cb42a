"""S-1 over HTTP: records out of a party's scope answer 404 like missing ones, lists
return only the party's own records, and GET /me shows exactly what a party may do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sscard.cards.model import CardState
from sscard.register.model import OrgKind
from tests.factories import World

Holder = Callable[[int], dict[str, str]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def not_found(response: Any, detail: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"] == detail


def test_s_1_outlet_of_another_bank_finds_no_card_of_this_bank(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.RECEIVED, bank="ICBC")
    other = bearer(world.token(OrgKind.OUTLET, "BOC"))
    own = bearer(world.token(OrgKind.OUTLET, "ICBC"))
    # Out of scope reads exactly like a card that does not exist.
    not_found(client.get(f"/cards/{card.id}", headers=other), f"no card with id {card.id}")
    not_found(client.get("/cards/987654321", headers=other), "no card with id 987654321")
    not_found(
        client.get(f"/cards/{card.id}/transitions", headers=other), f"no card with id {card.id}"
    )
    moved = client.post(
        f"/cards/{card.id}/activations",
        headers=other,
        json={"channel": "outlet", "medical_password": "602417"},
    )
    not_found(moved, f"no card with id {card.id}")
    checked = client.post("/card-checks", headers=other, json={"card_number": card.card_number})
    not_found(checked, f"no card with card_number {card.card_number!r}")
    not_found(
        client.get(f"/persons/{card.person_id}", headers=other),
        f"no person with id {card.person_id}",
    )
    listed = client.get("/cards", headers=other).json()["items"]
    assert card.id not in [c["id"] for c in listed]
    assert client.get(f"/cards/{card.id}", headers=own).status_code == 200
    assert card.id in [c["id"] for c in client.get("/cards", headers=own).json()["items"]]
    assert world.reload(card).state == CardState.RECEIVED


def test_s_1_unit_sees_only_its_own_people(world: World, client: TestClient) -> None:
    mine, theirs = world.unit(), world.unit()
    colleague = world.person(unit=mine)
    stranger = world.person(unit=theirs)
    unit = bearer(world.token_for(mine))
    assert client.get(f"/persons/{colleague.id}", headers=unit).status_code == 200
    not_found(
        client.get(f"/persons/{stranger.id}", headers=unit), f"no person with id {stranger.id}"
    )
    searched = client.post("/persons/search", headers=unit, json={"id_number": stranger.id_number})
    not_found(searched, "no person with this ID number is registered")
    listed = client.get("/persons", headers=unit).json()["items"]
    assert [p["id"] for p in listed] == [colleague.id]
    # Asking for the other unit's list still yields only the unit's own people: none.
    other_list = client.get(f"/persons?unit_id={theirs.id}", headers=unit).json()["items"]
    assert other_list == []
    not_found(client.get(f"/units/{theirs.id}", headers=unit), f"no unit with id {theirs.id}")
    assert client.get(f"/units/{mine.id}", headers=unit).status_code == 200


def test_s_1_cardholder_reads_only_their_own_record(
    world: World, client: TestClient, holder: Holder
) -> None:
    me, other = world.person(), world.person()
    my_card = world.card(CardState.RECEIVED, person=me)
    their_card = world.card(CardState.RECEIVED, person=other)
    self_ = holder(me.id)
    assert client.get(f"/persons/{me.id}", headers=self_).status_code == 200
    not_found(client.get(f"/persons/{other.id}", headers=self_), f"no person with id {other.id}")
    not_found(
        client.get(f"/persons/{other.id}/records", headers=self_), f"no person with id {other.id}"
    )
    assert client.get(f"/cards/{my_card.id}", headers=self_).status_code == 200
    not_found(
        client.get(f"/cards/{their_card.id}", headers=self_), f"no card with id {their_card.id}"
    )
    cards = client.get("/cards", headers=self_).json()["items"]
    assert [c["id"] for c in cards] == [my_card.id]
    persons = client.get("/persons", headers=self_).json()["items"]
    assert [p["id"] for p in persons] == [me.id]
    # the insured inquires their own account, nobody else's.
    own = client.post(
        "/medical-accounts/inquiries", headers=self_, json={"id_number": me.id_number}
    )
    assert own.status_code == 200, own.text
    assert own.json()["person_id"] == me.id
    theirs = client.post(
        "/medical-accounts/inquiries", headers=self_, json={"id_number": other.id_number}
    )
    not_found(theirs, "no person with this ID number is registered")
    # Nothing else: a cardholder registers nobody and moves no card at a counter.
    refused = client.post(f"/cards/{my_card.id}/pickups", headers=self_, json={"by": "holder"})
    assert refused.status_code == 403


def test_s_1_cardholder_reports_own_card_lost_online_l_1(
    world: World, client: TestClient, holder: Holder
) -> None:
    me, other = world.person(), world.person()
    mine = world.card(CardState.ACTIVE, person=me)
    theirs = world.card(CardState.ACTIVE, person=other)
    body = {"kind": "oral", "channel": "online_banking"}
    done = client.post(f"/cards/{mine.id}/loss-reports", headers=holder(me.id), json=body)
    assert done.status_code == 200, done.text
    assert done.json()["card"]["state"] == CardState.LOST_ORAL
    refused = client.post(f"/cards/{theirs.id}/loss-reports", headers=holder(me.id), json=body)
    not_found(refused, f"no card with id {theirs.id}")
    written = client.post(
        f"/cards/{mine.id}/loss-reports", headers=holder(me.id), json={"kind": "written"}
    )
    assert written.status_code == 403
    assert world.reload(theirs).state == CardState.ACTIVE


def test_s_1_counter_parties_check_the_presented_card_but_never_read_by_id_or_list(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.ACTIVE)
    for kind in (OrgKind.HOSPITAL, OrgKind.PHARMACY, OrgKind.GRASSROOTS, OrgKind.HOTLINE):
        headers = bearer(world.token(kind))
        checked = client.post(
            "/card-checks", headers=headers, json={"card_number": card.card_number}
        )
        assert checked.status_code == 200, kind
        assert checked.json()["usable"] is True
        listed = client.get("/cards", headers=headers)
        assert listed.status_code == 403, kind
        assert client.get("/persons", headers=headers).status_code == 403, kind
        # Not by internal id either, which would let a counter walk every card.
        assert client.get(f"/cards/{card.id}", headers=headers).status_code == 403, kind


def test_s_1_me_lists_exactly_the_operations_of_kind_and_role(
    world: World, client: TestClient, holder: Holder
) -> None:
    pharmacy = client.get("/me", headers=bearer(world.token(OrgKind.PHARMACY))).json()
    assert pharmacy["scopes"] == {
        "accounts.settle": "presented",
        "calendar.read": "any",
        "cards.activate": "presented",
        "cards.check": "presented",
        "events.read": "own_org",
        "medical_password.change": "presented",
        "webhooks.manage": "own_org",
    }
    assert pharmacy["operations"] == sorted(pharmacy["scopes"])
    operator = client.get("/me", headers=bearer(world.token(OrgKind.CENTER))).json()
    supervisor = client.get(
        "/me", headers=bearer(world.token(OrgKind.CENTER, role="supervisor"))
    ).json()
    admin = client.get(
        "/me", headers=bearer(world.token(OrgKind.CENTER, role="administrator"))
    ).json()
    assert set(supervisor["scopes"]) - set(operator["scopes"]) == {
        "accounts.contributions",
        "audit.read",
        "calendar.write",
        "change_requests.review",
        "organizations.authorise",
        "organizations.write",
    }
    assert set(admin["scopes"]) - set(supervisor["scopes"]) == {
        "credentials.manage",
        "staff.manage",
    }
    assert admin["scopes"]["staff.manage"] == "any"
    outlet = client.get("/me", headers=bearer(world.token(OrgKind.OUTLET, "ICBC"))).json()
    assert outlet["scopes"]["cards.read"] == "own_bank"
    assert "cards.destroy" not in outlet["scopes"]
    person = world.person()
    me = client.get("/me", headers=holder(person.id)).json()
    assert me["person_id"] == person.id
    assert me["organization_kind"] == "cardholder"
    assert me["scopes"] == {
        "accounts.inquire": "own_person",
        "applications.read": "own_person",
        "cards.activate": "own_person",
        "cards.check": "own_person",
        "cards.loss_oral": "own_person",
        "cards.read": "own_person",
        "change_requests.read": "own_person",
        "person_records.read": "own_person",
        "persons.read": "own_person",
        "self.read": "own_person",
    }


def test_s_1_a_supervisor_approves_an_id_4_change_an_operator_cannot(
    world: World, client: TestClient
) -> None:
    person = world.person()
    sp = bearer(world.token(OrgKind.SERVICE_POINT))
    req = client.post(
        "/change-requests",
        headers=sp,
        json={
            "person_id": person.id,
            "field_name": "name",
            "new_value": "李四",
            "document": "公安机关证明",
        },
    ).json()
    assert (
        client.post(f"/change-requests/{req['id']}/submit", headers=sp, json={}).status_code == 200
    )
    operator = client.post(
        f"/change-requests/{req['id']}/approve",
        headers=bearer(world.token(OrgKind.CENTER)),
        json={},
    )
    assert operator.status_code == 403
    assert operator.json()["reason"] == "role"
    supervisor = client.post(
        f"/change-requests/{req['id']}/approve",
        headers=bearer(world.token(OrgKind.CENTER, role="supervisor")),
        json={},
    )
    assert supervisor.status_code == 200, supervisor.text
    assert supervisor.json()["state"] == "approved"


def test_s_1_counter_parties_act_only_on_the_card_presented_never_by_id_alone(
    world: World, client: TestClient
) -> None:
    """V-1, L-1 at the counter: the number printed on the card, not an internal id."""
    card, other = world.card(CardState.RECEIVED), world.card(CardState.RECEIVED)
    assert card.card_number
    assert other.card_number
    hospital = bearer(world.token(OrgKind.HOSPITAL))
    body: dict[str, Any] = {"channel": "hospital", "medical_password": "602417"}
    # No number: refused before any card is looked at (the same for an id that exists
    # and one that does not, so the answer says nothing about which ids exist).
    for card_id in (card.id, 999_999_999):
        missing = client.post(f"/cards/{card_id}/activations", headers=hospital, json=body)
        assert missing.status_code == 422, missing.text
        assert missing.json()["field"] == "card_number"
    # Another card's number: answered exactly like an unknown card, nothing activated.
    wrong = client.post(
        f"/cards/{card.id}/activations",
        headers=hospital,
        json={**body, "card_number": other.card_number},
    )
    not_found(wrong, f"no card with id {card.id}")
    assert world.reload(card).state == CardState.RECEIVED
    # The card presented: activated.
    done = client.post(
        f"/cards/{card.id}/activations",
        headers=hospital,
        json={**body, "card_number": card.card_number.lower()},
    )
    assert done.status_code == 200, done.text
    assert world.reload(card).state == CardState.ACTIVE
    # An outlet acts on its own bank's cards by id, as before.
    outlet = bearer(world.token(OrgKind.OUTLET, "ICBC"))
    by_id = client.post(
        f"/cards/{other.id}/activations",
        headers=outlet,
        json={"channel": "outlet", "medical_password": "602417"},
    )
    assert by_id.status_code == 200, by_id.text


@pytest.mark.parametrize("policy_name", ["henan"])  # 12333 takes oral loss reports there
def test_s_1_the_hotline_reports_lost_only_the_card_the_caller_names(
    world: World, client: TestClient
) -> None:
    card, other = world.card(CardState.ACTIVE), world.card(CardState.ACTIVE)
    hotline = bearer(world.token(OrgKind.HOTLINE))
    body = {"kind": "oral", "channel": "phone_12333"}
    missing = client.post(f"/cards/{card.id}/loss-reports", headers=hotline, json=body)
    assert missing.status_code == 422, missing.text
    wrong = client.post(
        f"/cards/{card.id}/loss-reports",
        headers=hotline,
        json={**body, "card_number": other.card_number},
    )
    not_found(wrong, f"no card with id {card.id}")
    done = client.post(
        f"/cards/{card.id}/loss-reports",
        headers=hotline,
        json={**body, "card_number": card.card_number},
    )
    assert done.status_code == 200, done.text
    assert world.reload(card).state == CardState.LOST_ORAL
    assert world.reload(other).state == CardState.ACTIVE
