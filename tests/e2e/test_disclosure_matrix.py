"""S-1 over HTTP: the exact JSON keys each party gets from every read and card move.

The expectations below are written by hand from the rule (who needs what), never
derived from ``sscard.access.disclosure``: if the table drifts, these fail. Who may
call which route at all is the authorisation matrix's business: a 403 here is
skipped, but every answer that does come back must match its row exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from sscard.applications.tables import Application
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.ids import luhn_complete
from sscard.register.model import OrgKind
from sscard.register.service import add_person_record
from sscard.register.tables import Organization, Person
from tests.factories import World

K = OrgKind
EVERYONE = list(OrgKind)


@pytest.fixture
def policy_name() -> str:
    return "henan"  # every activation channel and agent act is open here


def keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALL_PERSON = keys(
    "id id_number id_kind name gender birth_date status phone unit_org_id medical_scheme "
    "insured_since old_medical_card_state"
)
INQUIRY_PERSON = keys(
    "id name id_number id_kind gender birth_date status medical_scheme insured_since "
    "old_medical_card_state"
)
PERSON: dict[OrgKind, frozenset[str]] = {
    K.CENTER: ALL_PERSON,
    K.SERVICE_POINT: ALL_PERSON,
    K.CARDHOLDER: ALL_PERSON,
    K.BUREAU_WINDOW: INQUIRY_PERSON,
    K.GRASSROOTS: INQUIRY_PERSON,
    K.HOTLINE: INQUIRY_PERSON | {"phone"},
    K.BANK: keys("id name id_number id_kind gender birth_date phone"),
    K.OUTLET: keys("id name id_number id_kind gender birth_date phone"),
    K.UNIT: keys("id name id_number id_kind status unit_org_id"),
    K.HOSPITAL: keys("id name id_number id_kind gender birth_date medical_scheme insured_since"),
    K.PHARMACY: keys("id name id_number id_kind old_medical_card_state"),
    K.PHOTO_STUDIO: keys("id name"),
}

ALL_CARD = keys(
    "id person_id state allowed_actions bank_code card_number serial bank_card_number "
    "outlet_org_id unit_org_id ready_on ready_provisional valid_until handout_due received_at "
    "activated_at activation_channel financial_activated_at loss_reported_at "
    "oral_loss_lapses_at written_report_no replaced_by_card_id"
)
COUNTER_CARD = keys(
    "id person_id state allowed_actions valid_until activated_at bank_code card_number ready_on "
    "received_at activation_channel loss_reported_at oral_loss_lapses_at replaced_by_card_id"
)
CARD: dict[OrgKind, frozenset[str]] = {
    K.CENTER: ALL_CARD,
    K.BANK: ALL_CARD,
    K.OUTLET: ALL_CARD,
    K.CARDHOLDER: ALL_CARD,
    K.SERVICE_POINT: ALL_CARD - keys("serial bank_card_number financial_activated_at"),
    K.BUREAU_WINDOW: COUNTER_CARD,
    K.GRASSROOTS: COUNTER_CARD,
    K.HOTLINE: COUNTER_CARD,
    K.UNIT: keys(
        "id person_id state allowed_actions valid_until activated_at bank_code card_number "
        "outlet_org_id unit_org_id ready_on handout_due received_at"
    ),
    K.HOSPITAL: keys("id person_id state allowed_actions valid_until activated_at"),
    K.PHARMACY: keys("id person_id state allowed_actions valid_until activated_at"),
}

ALL_TRANSITION = keys(
    "id card_id from_state to_state action channel reason_code place_org_id actor_staff_id "
    "agent occurred_at"
)
TRANSITION: dict[OrgKind, frozenset[str]] = {
    K.CENTER: ALL_TRANSITION,
    K.SERVICE_POINT: ALL_TRANSITION,
    K.BANK: ALL_TRANSITION,
    K.OUTLET: ALL_TRANSITION,
    K.BUREAU_WINDOW: ALL_TRANSITION - {"actor_staff_id"},
    K.GRASSROOTS: ALL_TRANSITION - {"actor_staff_id"},
    K.HOTLINE: ALL_TRANSITION - {"actor_staff_id"},
    K.CARDHOLDER: ALL_TRANSITION - {"actor_staff_id"},
    K.UNIT: keys("id card_id from_state to_state action channel occurred_at place_org_id"),
    K.HOSPITAL: keys("id card_id from_state to_state action channel occurred_at"),
    K.PHARMACY: keys("id card_id from_state to_state action channel occurred_at"),
}
FEE = keys("id basis amount_fen voucher_no paid_at")

ALL_APPLICATION = keys(
    "id form_number person_id batch_id kind state bank_code photo_source photo_receipt_no "
    "form_data corrections return_due issued_at returned_at decided_at reject_reason"
)
APPLICATION: dict[OrgKind, frozenset[str]] = {
    K.CENTER: ALL_APPLICATION,
    K.SERVICE_POINT: ALL_APPLICATION,
    K.UNIT: ALL_APPLICATION,
    K.CARDHOLDER: ALL_APPLICATION,
    K.BANK: keys("id form_number person_id batch_id kind state bank_code issued_at decided_at"),
    K.OUTLET: keys("id form_number person_id batch_id kind state bank_code issued_at decided_at"),
    K.BUREAU_WINDOW: keys(
        "id form_number person_id batch_id kind state bank_code issued_at return_due"
    ),
    K.GRASSROOTS: keys(
        "id form_number person_id batch_id kind state bank_code issued_at return_due"
    ),
    K.HOTLINE: keys("id form_number person_id batch_id kind state bank_code issued_at return_due"),
}

ORG_FULL = keys("id kind code name parent_id bank_code authorisations")
ORGANIZATION = {k: ORG_FULL - {"authorisations"} for k in EVERYONE}
ORGANIZATION |= {
    K.CENTER: ORG_FULL,
    K.SERVICE_POINT: ORG_FULL,
    K.CARDHOLDER: keys("id kind code name"),
}
UNIT_FULL = keys("id code name uscc unit_kind agreement_bank_code agreement_signed_at")
UNIT: dict[OrgKind, frozenset[str]] = {k: keys("id code name") for k in EVERYONE}
del UNIT[K.CARDHOLDER]
UNIT |= dict.fromkeys((K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET, K.UNIT), UNIT_FULL)

RECORD = {
    k: keys("id person_id kind title started_on ended_on detail")
    for k in (K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.CARDHOLDER)
}
ALL_CHANGE = keys(
    "id person_id field_name old_value new_value document state created_at decided_at "
    "decline_reason card_change_done"
)
CHANGE = {K.CENTER: ALL_CHANGE, K.SERVICE_POINT: ALL_CHANGE, K.CARDHOLDER: ALL_CHANGE}
CHANGE |= {
    k: keys("id person_id field_name new_value state decided_at card_change_done")
    for k in (K.BANK, K.OUTLET)
}
STATEMENT = {
    k: keys("person_id balance_fen old_card_balance_fen entries next contributions")
    for k in (K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE, K.CARDHOLDER)
}
ALL_ACCOUNT = keys(
    "id bank_code bank_card_number holder_id_number card_id state allowed_actions password_set "
    "password_locked failed_attempts opened_at activated_at frozen_at closed_at"
)
ACCOUNT = {K.BANK: ALL_ACCOUNT, K.OUTLET: ALL_ACCOUNT, K.CARDHOLDER: ALL_ACCOUNT}
ACCOUNT[K.CENTER] = keys("id bank_code card_id state opened_at activated_at frozen_at closed_at")
# The bank's own record of its acts (C-1): who, from where and through which channel.
BANK_RECORD = keys(
    "id bank_code from_state to_state action actor_staff_id actor_org_id source channel "
    "occurred_at detail"
)
ACCOUNT_EVENT = {
    K.BANK: BANK_RECORD,
    K.OUTLET: BANK_RECORD,
    K.CENTER: keys("id from_state to_state action channel occurred_at"),
}
CARD_CHECK = {k: keys("card_id state usable reason") for k in EVERYONE}
BATCH = keys(
    "id unit_org_id stage state bank_code issued_at return_due returned_at checked_at overdue_at"
)
SUMMARY = {
    k: keys("batch unit_code unit_name accepted rejected cards_ready_on lines")
    for k in (K.CENTER, K.SERVICE_POINT, K.UNIT, K.BANK, K.OUTLET)
}
# Who the caller is: since logins came in, /me also says how the caller authenticated
# and each operation's record scope, and a cardholder's person id and masked ID number
# (the disclosure table's ``me`` row grew with MeRead).
ME = keys(
    "staff_id name role organization organization_kind bank_code operations kind "
    "authenticated_by person_id id_number scopes"
)
RECEIPT = keys(
    "transaction_id kind amount_fen balance_fen card_id card_state activated replayed at"
)
# Problems also carry what a login or password refusal needs to say what to do next
# (``unlocks_at``, ``tries_left``), the bank a region forces (``forced_bank``) and why a
# card cannot pay (``card_state``): the disclosure table's problem row lists them.
PROBLEM_KEYS = keys(
    "type title status code detail field errors current_state allowed reason operation "
    "attempts_left ready_on balance_fen unlocks_at tries_left forced_bank card_state"
)


def exactly(table: dict[OrgKind, frozenset[str]], kind: OrgKind, body: Any, what: str) -> None:
    assert kind in table, f"{kind} was shown a {what}, which S-1 gives it nothing of"
    assert isinstance(body, dict), (what, body)
    assert set(body) == table[kind], (what, kind.value, sorted(set(body) ^ table[kind]))


def each(table: dict[OrgKind, frozenset[str]], kind: OrgKind, items: Any, what: str) -> None:
    assert isinstance(items, list)
    for item in items:
        exactly(table, kind, item, what)


def page_of(table: dict[OrgKind, frozenset[str]], what: str) -> Check:
    def check(kind: OrgKind, body: Any) -> None:
        assert set(body) == {"items", "next"}
        assert body["items"], f"no {what} to look at"
        each(table, kind, body["items"], what)

    return check


def one(table: dict[OrgKind, frozenset[str]], what: str) -> Check:
    return lambda kind, body: exactly(table, kind, body, what)


def many(table: dict[OrgKind, frozenset[str]], what: str) -> Check:
    def check(kind: OrgKind, body: Any) -> None:
        assert body, f"no {what} to look at"
        each(table, kind, body, what)

    return check


def transitions(kind: OrgKind, items: Any) -> None:
    each(TRANSITION, kind, items, "transition")
    for t in items:
        if t.get("agent") is not None:
            assert set(t["agent"]) == keys("name id_number document document_ref")


def summary(kind: OrgKind, body: Any) -> None:
    exactly(SUMMARY, kind, body, "summary")
    assert set(body["batch"]) == BATCH


def statement(kind: OrgKind, body: Any) -> None:
    exactly(STATEMENT, kind, body, "statement")
    for e in body["entries"]:
        assert set(e) == keys("id transaction_id kind amount_fen at org_id")


def account_detail(kind: OrgKind, body: Any) -> None:
    assert set(body) == {"account", "events"}
    exactly(ACCOUNT, kind, body["account"], "bank account")
    assert body["events"]
    each(ACCOUNT_EVENT, kind, body["events"], "bank account event")


Check = Callable[[OrgKind, Any], None]


@dataclass
class Region:
    world: World
    client: TestClient
    as_cardholder: Callable[[int], AbstractContextManager[None]]
    unit_token: str  # a staff member of ``unit``, the unit the person works for
    person: Person
    card: Card
    unit: Organization
    batch_id: int
    application_id: int
    change_id: int

    def call(self, kind: OrgKind, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        acting: AbstractContextManager[None] = nullcontext()
        if kind is K.CARDHOLDER:
            acting = self.as_cardholder(self.person.id)
        elif kind is K.UNIT:
            headers["Authorization"] = f"Bearer {self.unit_token}"
        else:
            headers["Authorization"] = f"Bearer {self.world.token(kind)}"
        with acting:
            return self.client.request(method, path, json=body, headers=headers, **kw)


@pytest.fixture
def region(
    world: World,
    client: TestClient,
    as_cardholder: Callable[[int], AbstractContextManager[None]],
) -> Region:
    # Each caller reads records in its own scope (access.policy): the person works for
    # a unit (with its units row and an agreement with ICBC) whose staff is the unit
    # caller, and holds an ICBC card, the bank and outlet callers' bank.
    unit = world.unit(bank="ICBC")
    unit_token = world.token_for(unit)
    person = world.person()
    card = world.card(CardState.ACTIVE, person=person)
    # As if the unit had applied for it in a bundle: the unit's own person and card.
    with world.rt.uow() as uow:
        uow.session.execute(update(Card).where(Card.id == card.id).values(unit_org_id=unit.id))
        uow.session.execute(
            update(Person).where(Person.id == person.id).values(unit_org_id=unit.id)
        )
        uow.commit()
    sp = world.actor(K.SERVICE_POINT)
    with world.rt.uow() as uow:
        add_person_record(
            uow,
            world.rt,
            actor=sp,
            person_id=person.id,
            kind="work_history",
            title="Welder at ACME",
            started_on=None,
            ended_on=None,
            detail={},
        )
    change = world.change_request(
        person.id, field_name="name", new_value="李四", document="household register extract"
    )
    # A bundle of the unit's forms, issued through the API as the service point does.
    world.person(unit=unit)
    issued = client.post(
        "/batches",
        headers={"Authorization": f"Bearer {world.token(K.SERVICE_POINT)}"},
        json={
            "unit_code": unit.code,
            "stage": "2026-Q1",
            "collector": {"name": "王芳", "id_number": person.id_number},
        },
    )
    assert issued.status_code == 201, issued.text
    with world.rt.uow() as uow:
        application_id = uow.session.scalar(
            select(Application.id).where(Application.person_id == person.id)
        )
    assert application_id is not None
    return Region(
        world=world,
        client=client,
        as_cardholder=as_cardholder,
        unit_token=unit_token,
        person=person,
        card=world.reload(card),
        unit=unit,
        batch_id=issued.json()["batch"]["id"],
        application_id=application_id,
        change_id=change.id,
    )


def reads(r: Region) -> list[tuple[str, str, Any, Check | None]]:
    """Every read endpoint: method, path, body, and the shape check of its answer."""
    p, c = r.person, r.card
    return [
        ("GET", f"/persons/{p.id}", None, one(PERSON, "person")),
        ("POST", "/persons/search", {"id_number": p.id_number}, one(PERSON, "person")),
        ("GET", f"/persons?unit_id={r.unit.id}", None, page_of(PERSON, "person")),
        ("GET", f"/persons/{p.id}/records", None, many(RECORD, "person record")),
        ("GET", f"/change-requests/{r.change_id}", None, one(CHANGE, "change request")),
        ("GET", "/organizations", None, page_of(ORGANIZATION, "organization")),
        ("GET", f"/units/{r.unit.id}", None, one(UNIT, "unit")),
        ("GET", f"/cards?person_id={p.id}", None, page_of(CARD, "card")),
        ("GET", f"/cards/{c.id}", None, one(CARD, "card")),
        ("GET", f"/cards/{c.id}/transitions", None, transitions),
        ("POST", "/card-checks", {"card_number": c.card_number}, one(CARD_CHECK, "card check")),
        ("GET", f"/applications/{r.application_id}", None, one(APPLICATION, "application")),
        ("GET", f"/batches/{r.batch_id}", None, summary),
        ("POST", "/medical-accounts/inquiries", {"id_number": p.id_number}, statement),
        ("POST", "/bank/accounts/search", {"bank_card_number": c.bank_card_number}, account_detail),
        (
            "GET",
            "/me",
            None,
            lambda kind, body: exactly(dict.fromkeys(EVERYONE, ME), kind, body, "me"),
        ),
    ]


ANSWERED: set[tuple[OrgKind, str]] = set()


# The cardholder too: they log in for real and read their own records (own_person).
@pytest.mark.parametrize("kind", EVERYONE)
def test_s1_every_read_shows_each_party_exactly_its_fields(region: Region, kind: OrgKind) -> None:
    answered = 0
    for method, path, body, check in reads(region):
        response = region.call(kind, method, path, body)
        if response.status_code == 403 or check is None:
            # Refused (the authorisation matrix decides who may call what), or nothing
            # to find: either way the problem carries problem keys only.
            assert response.status_code in (200, 403, 404), (path, response.text)
            if response.status_code >= 400:
                assert set(response.json()) <= PROBLEM_KEYS
            continue
        assert response.status_code == 200, (kind, path, response.text)
        check(kind, response.json())
        answered += 1
        ANSWERED.add((kind, path.split("?")[0]))
    assert answered >= 1 or kind is K.PHOTO_STUDIO


def test_s1_units_show_each_party_its_fields(world: World, client: TestClient) -> None:
    unit = world.unit(bank="ICBC")
    answered = set()
    for kind in EVERYONE:
        if kind is K.CARDHOLDER:
            continue
        # A unit reads its own unit's record (units.read: own organization).
        token = world.token_for(unit) if kind is K.UNIT else world.token(kind)
        response = client.get(f"/units/{unit.id}", headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 403:
            continue
        assert response.status_code == 200, response.text
        exactly(UNIT, kind, response.json(), "unit")
        answered.add(kind)
    assert {K.CENTER, K.BANK, K.UNIT} <= answered
    # Another unit's record answers as if there were none (out of scope: 404).
    other = world.token(K.UNIT)
    response = client.get(f"/units/{unit.id}", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 404
    assert unit.name not in response.text


def test_s1_cardholder_sees_their_own_record_cards_and_account(region: Region) -> None:
    me = K.CARDHOLDER
    exactly(PERSON, me, region.call(me, "GET", "/self").json(), "person")
    page_of(CARD, "card")(me, region.call(me, "GET", "/self/cards").json())
    account = region.call(me, "GET", "/self/medical-account").json()
    assert set(account) == keys("balance_fen old_card_balance_fen entries next contributions")
    log = region.call(me, "GET", "/self/access-log").json()
    assert set(log) == {"items", "next"}
    assert log["items"]
    for entry in log["items"]:
        assert set(entry) == keys(
            "id at kind organization_name organization_kind action subject_type what"
        )
    # The party's own masking holds for the cardholder too: masked unless asked.
    assert "*" in region.call(me, "GET", "/self").json()["id_number"]


# ---------------------------------------------------------------- card moves


def _moved(kind: OrgKind, body: Any, *, reissue: bool = False) -> None:
    if reissue:
        assert set(body) == keys("old_card transitions new_card fee")
        exactly(CARD, kind, body["old_card"], "card")
        exactly(CARD, kind, body["new_card"], "card")
        assert set(body["fee"]) == FEE
    else:
        assert set(body) == keys("card transitions fee")
        exactly(CARD, kind, body["card"], "card")
        if body["fee"] is not None:
            assert set(body["fee"]) == FEE
    assert body["transitions"]
    transitions(kind, body["transitions"])


PASSWORD = "482913"
ICBC_BIN = "622202"
CHANNEL = {
    K.OUTLET: "outlet",
    K.HOSPITAL: "hospital",
    K.PHARMACY: "pharmacy",
    K.BUREAU_WINDOW: "bureau_window",
    K.HOTLINE: "phone_12333",
    K.CENTER: "online",
    K.GRASSROOTS: "grassroots",
}


@pytest.mark.parametrize("kind", list(CHANNEL))
def test_s1_activation_answers_show_each_activating_party_its_fields(
    world: World, client: TestClient, kind: OrgKind
) -> None:
    card = world.card(CardState.RECEIVED)
    response = client.post(
        f"/cards/{card.id}/activations",
        headers={"Authorization": f"Bearer {world.token(kind)}"},
        json={
            "channel": CHANNEL[kind],
            "medical_password": PASSWORD,
            "card_number": card.card_number,  # counter parties act on the card presented
        },
    )
    assert response.status_code == 200, response.text
    _moved(kind, response.json())


def _post(world: World, client: TestClient, kind: OrgKind, path: str, body: Any) -> Any:
    response = client.post(
        path, headers={"Authorization": f"Bearer {world.token(kind)}"}, json=body
    )
    assert response.status_code in (200, 201), (path, response.text)
    return response.json()


def test_s1_card_move_answers_show_each_moving_party_its_fields(
    world: World, client: TestClient
) -> None:
    ordered = world.card(CardState.ORDERED)
    world.goto(ordered.ready_on)
    _moved(
        K.BANK,
        _post(
            world,
            client,
            K.BANK,
            f"/cards/{ordered.id}/production",
            {
                "card_number": "A77700001",
                "serial": "SN77700001",
                "bank_card_number": luhn_complete(ICBC_BIN + "777000000001"),
                "outlet_code": world.actor(K.OUTLET).org_code,
            },
        ),
    )
    _moved(
        K.OUTLET, _post(world, client, K.OUTLET, f"/cards/{ordered.id}/pickups", {"by": "holder"})
    )
    for kind, channel in (
        (K.BANK, "bank_phone"),
        (K.OUTLET, "online_banking"),
        (K.HOTLINE, "phone_12333"),
    ):
        card = world.card(CardState.ACTIVE)
        _moved(
            kind,
            _post(
                world,
                client,
                kind,
                f"/cards/{card.id}/loss-reports",
                {"kind": "oral", "channel": channel, "card_number": card.card_number},
            ),
        )
    card = world.card(CardState.ACTIVE)
    written = _post(world, client, K.OUTLET, f"/cards/{card.id}/loss-reports", {"kind": "written"})
    _moved(K.OUTLET, written)
    number = world.reload(card).written_report_no
    cancelled = _post(
        world,
        client,
        K.OUTLET,
        f"/cards/{card.id}/loss-cancellations",
        {"written_report_no": number},
    )
    _moved(K.OUTLET, cancelled)
    lost = world.card(CardState.LOST_WRITTEN)
    _moved(
        K.OUTLET, _post(world, client, K.OUTLET, f"/cards/{lost.id}/replacements", {}), reissue=True
    )
    worn = world.card(CardState.ACTIVE)
    _moved(
        K.OUTLET,
        _post(world, client, K.OUTLET, f"/cards/{worn.id}/changes", {"reason": "chip_damaged"}),
        reissue=True,
    )


def test_s1_unit_hand_out_and_return_answers(world: World, client: TestClient) -> None:
    unit = world.actor(K.UNIT)
    handed, returned = world.cards(2, CardState.AT_OUTLET)
    with world.rt.uow() as uow:
        uow.session.execute(
            update(Card)
            .where(Card.id.in_([handed.id, returned.id]))
            .values(unit_org_id=unit.org_id)
        )
        uow.commit()
    for card in (handed, returned):
        _post(world, client, K.OUTLET, f"/cards/{card.id}/pickups", {"by": "unit_administrator"})
    _moved(K.UNIT, _post(world, client, K.UNIT, f"/cards/{handed.id}/hand-outs", None))
    _moved(
        K.OUTLET,
        _post(world, client, K.OUTLET, f"/cards/{returned.id}/returns", {"reason": "left_unit"}),
    )


@pytest.mark.parametrize("kind", [K.HOSPITAL, K.PHARMACY])
def test_s1_settlement_receipts(world: World, client: TestClient, kind: OrgKind) -> None:
    card = world.card(CardState.RECEIVED)
    _post(
        world,
        client,
        K.OUTLET,
        f"/cards/{card.id}/activations",
        {"channel": "outlet", "medical_password": PASSWORD},
    )
    response = client.post(
        "/settlements",
        headers={"Authorization": f"Bearer {world.token(kind)}", "Idempotency-Key": f"k-{kind}"},
        json={
            "card_number": card.card_number,
            "kind": "pharmacy" if kind is K.PHARMACY else "outpatient",
            "amount_fen": 1,
            "password": PASSWORD,
        },
    )
    # An empty account refuses the payment: the refusal's keys are problem keys only.
    if response.status_code == 409:
        assert set(response.json()) <= PROBLEM_KEYS
        return
    assert response.status_code == 201, response.text
    assert set(response.json()) == RECEIPT


# ---------------------------------------------------------------- the examples


def test_s1_pharmacy_sees_name_masked_id_card_state_and_balance_never_bank_card_or_history(
    region: Region,
) -> None:
    ph = K.PHARMACY
    person = region.call(ph, "GET", f"/persons/{region.person.id}")
    if person.status_code == 200:  # whether it may look people up at all is authz's call
        body = person.json()
        assert body["name"] == region.person.name
        assert (
            body["id_number"]
            == region.person.id_number[:4] + "*" * 10 + region.person.id_number[-4:]
        )
        assert "phone" not in body
        assert "unit_org_id" not in body
    # A pharmacy reads the card presented at its counter, by its printed number
    # (cards.check: presented), never a card by id: it learns the state, no numbers.
    check = region.call(ph, "POST", "/card-checks", {"card_number": region.card.card_number})
    assert check.status_code == 200, check.text
    assert check.json()["state"] == "active"
    assert not {"bank_card_number", "serial", "card_number"} & set(check.json())
    by_id = region.call(ph, "GET", f"/cards/{region.card.id}")
    assert by_id.status_code == 403
    assert region.card.serial not in by_id.text
    assert region.card.bank_card_number not in by_id.text
    records = region.call(ph, "GET", f"/persons/{region.person.id}/records")
    assert records.status_code == 403
    assert "Welder" not in records.text
    full = region.call(
        ph,
        "POST",
        f"/cards/{region.card.id}/disclosures",
        {"field": "bank_card_number", "reason": "curious about it"},
    )
    assert full.status_code == 403
    assert full.json()["reason"] == "not_disclosed_in_full"


def test_s1_bank_sees_its_own_card_in_full_on_request_never_medical_entries(
    region: Region,
) -> None:
    bank = K.BANK
    card = region.call(bank, "GET", f"/cards/{region.card.id}").json()
    assert card["serial"] == region.card.serial
    assert card["bank_card_number"] != region.card.bank_card_number  # masked by default
    assert "*" in card["bank_card_number"]
    full = region.call(
        bank,
        "POST",
        f"/cards/{region.card.id}/disclosures",
        {"field": "bank_card_number", "reason": "customer asked at the counter"},
    )
    assert full.status_code == 200, full.text
    assert full.json()["value"] == region.card.bank_card_number
    inquiry = region.call(
        bank, "POST", "/medical-accounts/inquiries", {"id_number": region.person.id_number}
    )
    assert inquiry.status_code == 403
    assert "entries" not in inquiry.json()
    person = region.call(bank, "GET", f"/persons/{region.person.id}").json()
    assert not {"status", "unit_org_id", "medical_scheme", "old_medical_card_state"} & set(person)
    # Work history is the agency's and the person's: authorisation refuses the bank the
    # read itself (person_records.read), before any field could be shown.
    records = region.call(bank, "GET", f"/persons/{region.person.id}/records")
    assert records.status_code == 403
    assert records.json()["operation"] == "person_records.read"
    assert "Welder" not in records.text
    # Another bank's card answers as if there were none (out of scope: 404).
    other = region.world.card(CardState.ACTIVE, bank="CCB")
    refused = region.call(bank, "GET", f"/cards/{other.id}")
    assert refused.status_code == 404
    assert other.serial is not None
    assert other.serial not in refused.text
