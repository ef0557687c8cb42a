"""S-1 and Q-1 over HTTP: the access log, full views, self-service, one shaping for all."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, text

from sscard.api.disclosure import RESOURCE_OF
from sscard.audit.tables import AuditRecord
from sscard.cards.model import CardState
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World

K = OrgKind
Cardholder = Callable[[int], AbstractContextManager[None]]


def auth(world: World, kind: OrgKind) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(kind)}"}


def audit(world: World, kind: str, person_id: int | None = None) -> list[AuditRecord]:
    with world.rt.uow() as uow:
        q = select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.id)
        if person_id is not None:
            q = q.where(AuditRecord.person_id == person_id)
        return list(uow.session.scalars(q))


def test_s1_reading_a_person_logs_who_which_organization_what_whose_and_from_where(
    world: World, client: TestClient
) -> None:
    person = world.person()
    center = world.actor(K.CENTER)
    assert client.get(f"/persons/{person.id}", headers=auth(world, K.CENTER)).status_code == 200
    (entry,) = audit(world, "inquiry", person.id)
    assert entry.actor_staff_id == center.staff_id
    assert entry.actor_org_id == center.org_id
    assert entry.action == "inquiry.get_person"
    assert entry.subject_type == "person"
    assert entry.detail == {"route": "GET /persons/{person_id}", "what": ["person"]}
    assert entry.source == "testclient"
    assert entry.occurred_at == world.rt.now()


def test_s1_a_list_of_persons_logs_each_person_once(world: World, client: TestClient) -> None:
    unit = world.unit()
    people = [world.person(unit=unit) for _ in range(3)]
    response = client.get(f"/persons?unit_id={unit.id}", headers=auth(world, K.SERVICE_POINT))
    assert response.status_code == 200
    logged = sorted(e.person_id for e in audit(world, "inquiry") if e.person_id is not None)
    assert logged == sorted(p.id for p in people)


def test_s1_searches_and_card_checks_are_logged_against_the_holder(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.ACTIVE)
    person_id = card.person_id
    with world.rt.uow() as uow:
        number = uow.session.get_one(Person, person_id).id_number
    client.post("/persons/search", headers=auth(world, K.CENTER), json={"id_number": number})
    client.post(
        "/card-checks", headers=auth(world, K.PHARMACY), json={"card_number": card.card_number}
    )
    client.post(
        "/bank/accounts/search",
        headers=auth(world, K.OUTLET),
        json={"bank_card_number": card.bank_card_number},
    )
    client.get(f"/cards/{card.id}/transitions", headers=auth(world, K.BANK))
    actions = [e.action for e in audit(world, "inquiry", person_id)]
    assert actions == [
        "inquiry.find_person",
        "inquiry.check_card",
        "inquiry.search_account",
        "inquiry.card_history",
    ]


def test_s1_card_moves_are_changes_not_inquiries(world: World, client: TestClient) -> None:
    card = world.card(CardState.ACTIVE)
    response = client.post(
        f"/cards/{card.id}/loss-reports",
        headers=auth(world, K.OUTLET),
        json={"kind": "oral", "channel": "bank_phone"},
    )
    assert response.status_code == 200, response.text
    assert audit(world, "inquiry", card.person_id) == []


def _refuse_inquiries(connection: Connection) -> None:
    """A real database fault: the log's INSERT is rejected by a trigger."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(
                "CREATE FUNCTION no_inquiries() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'access log down'; END $$ LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER no_inquiries BEFORE INSERT ON audit_records FOR EACH ROW "
                "WHEN (NEW.kind = 'inquiry') EXECUTE FUNCTION no_inquiries()"
            )
        )
    else:
        connection.execute(
            text(
                "CREATE TRIGGER no_inquiries BEFORE INSERT ON audit_records "
                "WHEN NEW.kind = 'inquiry' BEGIN SELECT RAISE(ABORT, 'access log down'); END"
            )
        )


def test_s1_a_failed_access_log_write_shows_nothing(
    world: World, client: TestClient, connection: Connection
) -> None:
    person = world.person(name="王秘密")
    _refuse_inquiries(connection)
    response = client.get(f"/persons/{person.id}", headers=auth(world, K.CENTER))
    assert response.status_code == 503
    assert response.json()["code"] == "access_log_unavailable"
    assert "王秘密" not in response.text
    assert str(person.id_number[-4:]) not in response.text
    listing = client.get("/persons", headers=auth(world, K.CENTER))
    assert listing.status_code == 503
    assert "王秘密" not in listing.text


# ---------------------------------------------------------------- self-service


def test_q1_holder_sees_who_looked_at_their_record_newest_first(
    world: World, client: TestClient, as_cardholder: Cardholder
) -> None:
    card = world.card(CardState.ACTIVE)
    pid = card.person_id
    client.post(
        "/card-checks", headers=auth(world, K.PHARMACY), json={"card_number": card.card_number}
    )
    client.get(f"/persons/{pid}", headers=auth(world, K.CENTER))
    with as_cardholder(pid):
        first = client.get("/self/access-log?limit=2")
        assert first.status_code == 200, first.text
        page = first.json()
        rest = client.get(f"/self/access-log?limit=50&after={page['next']}").json()
        assert client.get("/self").status_code == 200
        assert client.get("/self/cards").status_code == 200
    newest, second = page["items"]
    assert newest["kind"] == "inquiry"
    assert newest["organization_kind"] == "center"
    assert newest["what"] == ["person"]
    assert second["organization_kind"] == "pharmacy"
    assert second["organization_name"].startswith("pharmacy ")
    assert second["what"] == ["card_check"]
    # Older entries: the card's own life (changes by the service point and the outlet).
    older = rest["items"]
    assert {e["kind"] for e in older} == {"change"}
    assert "outlet" in {e["organization_kind"] for e in older}
    ids = [e["id"] for e in page["items"] + older]
    assert ids == sorted(ids, reverse=True)
    # Reading my own record, cards and access log is not someone looking at me.
    assert [e.action for e in audit(world, "inquiry", pid)] == [
        "inquiry.check_card",
        "inquiry.get_person",
    ]


def test_q1_holder_reads_their_medical_account(
    world: World, client: TestClient, as_cardholder: Cardholder
) -> None:
    person = world.person()
    with as_cardholder(person.id):
        response = client.get("/self/medical-account")
    assert response.status_code == 200, response.text
    assert response.json()["balance_fen"] == 0


def test_s1_self_service_is_for_cardholders_only(world: World, client: TestClient) -> None:
    for path in ("/self", "/self/cards", "/self/medical-account", "/self/access-log"):
        response = client.get(path, headers=auth(world, K.CENTER))
        assert response.status_code == 403, path
        assert response.json()["code"] == "forbidden"


def test_s1_a_cardholder_never_reaches_someone_elses_record(
    world: World, client: TestClient, as_cardholder: Cardholder
) -> None:
    me, other = world.person(), world.person()
    with as_cardholder(me.id):
        # Someone else's record is out of the cardholder's scope (own_person): it
        # answers exactly as a record that does not exist (access.policy).
        looked = client.get(f"/persons/{other.id}")
        assert looked.status_code == 404
        assert other.name not in looked.text
        refused = client.post(
            f"/persons/{other.id}/disclosures", json={"field": "id_number", "reason": "curious"}
        )
        assert refused.status_code == 404
        assert other.id_number not in refused.text
        mine = client.post("/self/disclosures", json={"field": "id_number", "reason": "my copy"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["value"] == me.id_number


# ---------------------------------------------------------------- full views


def test_s1_a_full_view_is_shown_on_request_and_audited(
    world: World, client: TestClient, as_cardholder: Cardholder
) -> None:
    person = world.person()
    sp = world.actor(K.SERVICE_POINT)
    masked = client.get(f"/persons/{person.id}", headers=auth(world, K.SERVICE_POINT)).json()
    assert masked["id_number"] != person.id_number
    response = client.post(
        f"/persons/{person.id}/disclosures",
        headers=auth(world, K.SERVICE_POINT),
        json={"field": "id_number", "reason": "checking the ID card at the counter"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["value"] == person.id_number
    assert response.headers["cache-control"] == "no-store"
    (entry,) = audit(world, "disclosure", person.id)
    assert entry.actor_staff_id == sp.staff_id
    assert entry.action == "disclosure.id_number"
    assert entry.detail["field"] == "id_number"
    assert entry.detail["reason"] == "checking the ID card at the counter"
    with as_cardholder(person.id):
        log = client.get("/self/access-log").json()["items"]
    assert log[0]["kind"] == "disclosure"
    assert log[0]["organization_kind"] == "service_point"
    assert log[0]["what"] == ["person.id_number"]


@pytest.mark.parametrize(
    ("kind", "field"),
    [(K.HOSPITAL, "id_number"), (K.PHARMACY, "phone"), (K.BUREAU_WINDOW, "id_number")],
)
def test_s1_full_views_are_refused_where_the_policy_withholds_them(
    world: World, client: TestClient, kind: OrgKind, field: str
) -> None:
    person = world.person()
    response = client.post(
        f"/persons/{person.id}/disclosures",
        headers=auth(world, kind),
        json={"field": field, "reason": "would like to know"},
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "not_disclosed_in_full"
    assert person.id_number not in response.text
    assert audit(world, "disclosure") == []


def test_s1_a_full_view_needs_a_reason_and_stays_within_the_banks_own_cards(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.ACTIVE, bank="CCB")
    no_reason = client.post(
        f"/cards/{card.id}/disclosures",
        headers=auth(world, K.BANK),
        json={"field": "bank_card_number"},
    )
    assert no_reason.status_code == 422
    other_bank = client.post(
        f"/cards/{card.id}/disclosures",
        headers=auth(world, K.BANK),  # an ICBC staff member
        json={"field": "bank_card_number", "reason": "customer at the counter"},
    )
    # Another bank's card is out of scope: 404, as if there were none (access.policy).
    assert other_bank.status_code == 404
    assert card.bank_card_number is not None
    assert card.bank_card_number not in other_bank.text
    assert audit(world, "disclosure") == []


# ---------------------------------------------------------------- one mechanism


def test_s1_an_idempotent_replay_is_shaped_for_the_asker(world: World, client: TestClient) -> None:
    card = world.card(CardState.RECEIVED)
    headers = {**auth(world, K.HOSPITAL), "Idempotency-Key": "first-visit"}
    body = {"channel": "hospital", "medical_password": "482913", "card_number": card.card_number}
    first = client.post(f"/cards/{card.id}/activations", headers=headers, json=body)
    assert first.status_code == 200, first.text
    again = client.post(f"/cards/{card.id}/activations", headers=headers, json=body)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert "bank_card_number" not in again.json()["card"]
    assert "serial" not in again.json()["card"]


def test_s1_problems_carry_problem_keys_only(world: World, client: TestClient) -> None:
    card = world.card(CardState.REPLACED)
    response = client.post(
        f"/cards/{card.id}/activations",
        headers=auth(world, K.PHARMACY),
        json={
            "channel": "pharmacy",
            "medical_password": "482913",
            "card_number": card.card_number,
        },
    )
    assert response.status_code in (403, 409, 422)
    assert set(response.json()) <= {
        "type", "title", "status", "code", "detail", "field", "errors", "current_state",
        "allowed", "reason", "operation", "attempts_left", "ready_on", "balance_fen",
    }  # fmt: skip
    assert card.bank_card_number is not None
    assert card.bank_card_number not in response.text


def test_s1_openapi_keeps_the_full_shape_with_hidden_fields_optional(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    card = schemas["CardRead"]
    assert {"bank_card_number", "serial", "card_number"} <= set(card["properties"])
    assert "required" not in card
    assert "S-1" in card["description"]


def test_s1_every_json_answer_names_its_resource(client: TestClient) -> None:
    # Every operation of the whole app (whoever added it): a JSON answer whose model
    # names no resource would leave unshaped, so it must be classified in RESOURCE_OF.
    named = {model.__name__ for model in RESOURCE_OF}
    spec = client.get("/openapi.json").json()
    unnamed: list[str] = []
    checked = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                if not status.startswith("2"):
                    continue
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
                if ref is None:
                    if schema and path != "/health":
                        unnamed.append(f"{method} {path}: {schema}")
                    continue
                checked += 1
                if ref.rsplit("/", 1)[-1] not in named:
                    unnamed.append(f"{method} {path}: {ref}")
    assert unnamed == []
    assert checked > 50
