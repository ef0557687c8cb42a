"""S-1: the disclosure table itself (pure), and that it fits the API's shapes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from sscard.access.disclosure import (
    ENVELOPES,
    FULL,
    MASKED,
    NESTED,
    VISIBLE,
    Resource,
    disclose,
    disclose_anonymous,
    full_fields,
    problem,
    scrub,
    subjects,
    visible_fields,
)
from sscard.access.model import Agent, AgentDocument
from sscard.api.disclosure import RESOURCE_OF
from sscard.audit.tables import AuditRecord
from sscard.core.ids import luhn_complete, make_citizen_id
from sscard.events.model import Event, body_of, partner_payload
from sscard.register.model import OrgKind

K = OrgKind
R = Resource
ID = make_citizen_id("441900", date(1990, 5, 17), 123)
BANK_CARD = luhn_complete("622202" + "000000000001")


def test_s1_pharmacy_never_sees_bank_card_number_serial_or_work_history() -> None:
    card = visible_fields(K.PHARMACY, R.CARD)
    assert "state" in card
    assert not {"bank_card_number", "serial", "card_number"} & card
    assert visible_fields(K.PHARMACY, R.PERSON_RECORD) == frozenset()
    assert {"name", "id_number"} <= visible_fields(K.PHARMACY, R.PERSON)
    assert "balance_fen" in visible_fields(K.PHARMACY, R.RECEIPT)


def test_s1_bank_never_sees_medical_entries_or_the_insurance_side() -> None:
    assert visible_fields(K.BANK, R.STATEMENT) == frozenset()
    assert visible_fields(K.BANK, R.ENTRY) == frozenset()
    assert not {"status", "unit_org_id", "medical_scheme"} & visible_fields(K.BANK, R.PERSON)
    assert "bank_card_number" in full_fields(K.BANK, R.CARD)


def test_s1_disclose_keeps_visible_keys_masks_and_recurses() -> None:
    moved = {
        "card": {"id": 1, "state": "active", "bank_card_number": BANK_CARD, "serial": "SN1"},
        "transitions": [{"id": 2, "action": "activate", "actor_staff_id": 9, "agent": None}],
        "fee": None,
    }
    shown = disclose(K.PHARMACY, R.CARD_MOVED, moved)
    assert shown == {
        "card": {"id": 1, "state": "active"},
        "transitions": [{"id": 2, "action": "activate"}],
        "fee": None,
    }
    outlet = disclose(K.OUTLET, R.CARD_MOVED, moved)
    assert outlet["card"]["bank_card_number"] == BANK_CARD[:6] + "*" * 9 + BANK_CARD[-4:]
    assert outlet["card"]["serial"] == "SN1"
    assert outlet["transitions"][0]["actor_staff_id"] == 9


def test_s1_disclose_masks_values_given_in_full_and_is_idempotent() -> None:
    person = {"id": 1, "name": "张三", "id_number": ID, "phone": "13912345678"}
    once = disclose(K.CENTER, R.PERSON, person)
    assert once["id_number"] == ID[:4] + "*" * 10 + ID[-4:]
    assert once["phone"] == "139****5678"
    assert disclose(K.CENTER, R.PERSON, once) == once
    nested = {"id": 1, "agent": {"name": "李四", "id_number": ID, "document": "principal_id"}}
    agent = disclose(K.OUTLET, R.TRANSITION, nested)["agent"]
    assert agent["id_number"] == ID[:4] + "*" * 10 + ID[-4:]


def test_s1_a_kind_without_a_row_sees_nothing() -> None:
    assert disclose(K.PHOTO_STUDIO, R.CARD, {"id": 1, "state": "active"}) == {}
    assert visible_fields(K.CARDHOLDER, R.AUDIT_ENTRY) == frozenset()


def test_s1_problems_drop_any_key_nobody_listed() -> None:
    refusal = {"code": "x", "detail": "d", "status": 409, "holder_id_number": ID}
    assert disclose(K.CENTER, R.PROBLEM, refusal) == {"code": "x", "detail": "d", "status": 409}


def test_s1_problems_name_states_and_balances_only_to_those_who_see_them() -> None:
    refusal = {"code": "x", "current_state": "active", "allowed": [], "balance_fen": 12}
    assert problem(K.PHARMACY, refusal) == refusal
    assert problem(K.BANK, refusal) == {"code": "x", "current_state": "active", "allowed": []}
    assert problem(K.PHOTO_STUDIO, refusal) == {"code": "x"}
    assert problem(None, refusal) == {"code": "x"}


def test_s1_every_party_of_the_domain_has_a_row_for_persons_and_cards() -> None:
    # The photo studio sees no cards; every other party has a view of both.
    for kind in OrgKind:
        assert visible_fields(kind, R.PERSON), kind
        if kind is not K.PHOTO_STUDIO:
            assert visible_fields(kind, R.CARD), kind


def test_s1_full_views_exist_only_for_masked_fields_the_party_sees() -> None:
    for resource, rows in FULL.items():
        for kind, fields in rows.items():
            assert fields <= set(MASKED[resource]), (resource, kind)
            assert fields <= visible_fields(kind, resource), (resource, kind)


def test_s1_a_visible_nested_field_points_to_a_resource_the_party_sees() -> None:
    for parent, inner in NESTED.items():
        for kind in OrgKind:
            shown = visible_fields(kind, parent) if parent not in ENVELOPES else frozenset()
            for name, child in inner.items():
                if name in shown:
                    assert visible_fields(kind, child), (kind, parent, name, child)


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize("resource", [r for r in R if r in VISIBLE or r in ENVELOPES])
def test_s1_the_table_names_only_real_fields(resource: Resource) -> None:
    models = [m for m, r in RESOURCE_OF.items() if r is resource]
    real = set().union(*(_fields(m) for m in models))
    if resource is R.AGENT:  # stored with the transition, as Agent.record() writes it
        real = set(Agent("x", ID, AgentDocument.PRINCIPAL_ID).record())
    if resource is R.AUDIT_ENTRY:  # GET /audit/records shows the trail's columns
        assert real <= set(AuditRecord.__table__.columns.keys())
    if resource in (R.EVENT, R.EVENT_BODY):  # built by events.model, not a response model
        ev = Event(1, 1, "card.activated", datetime.now(UTC), "card", 5, 11, {"from": "x"})
        data = partner_payload(K.CENTER, ev)  # the center sees every key of the data
        real = set(data) if resource is R.EVENT else set(body_of(ev.type, ev.occurred_at, data))
    assert real or resource is R.EVENT_DETAIL, f"no response model carries {resource}"
    if resource in (R.PROBLEM, R.EVENT_DETAIL):
        # Problem extras and audited changes' details are open-ended; the table is the
        # allow-list.
        return
    for kind in OrgKind:
        assert visible_fields(kind, resource) <= real, (resource, kind)


def test_access_log_subjects_find_whose_record_was_read() -> None:
    page: dict[str, Any] = {"items": [{"id": 3}, {"id": 4}], "next": None}
    assert subjects(R.PERSON_PAGE, page) == [(R.PERSON, "person", 3), (R.PERSON, "person", 4)]
    detail = {"account": {"card_id": 7}, "events": []}
    assert subjects(R.ACCOUNT_DETAIL, detail) == [(R.BANK_ACCOUNT, "card", 7)]
    summary = {"batch": {"id": 1}, "lines": [{"application_id": 5}, {"application_id": 6}]}
    assert subjects(R.SUMMARY, summary) == [
        (R.SUMMARY_LINE, "application", 5),
        (R.SUMMARY_LINE, "application", 6),
    ]


def test_scrub_masks_id_and_bank_card_numbers_in_free_text() -> None:
    text = f"line 3: {ID} is taken; card {BANK_CARD} unknown; amount 12345"
    clean = scrub(text)
    assert ID not in clean
    assert BANK_CARD not in clean
    assert ID[-4:] in clean
    assert "12345" in clean


def test_s1_login_refusals_keep_what_the_caller_needs_even_unauthenticated() -> None:
    locked = {"code": "login_locked", "unlocks_at": "2026-03-02T09:15:00+08:00", "hash": "x"}
    assert problem(None, locked) == {"code": "login_locked", "unlocks_at": locked["unlocks_at"]}
    wrong = {"code": "wrong_password", "tries_left": 2, "reason": "r", "holder_id_number": ID}
    assert problem(None, wrong) == {"code": "wrong_password", "tries_left": 2, "reason": "r"}
    refused = {"code": "card_not_usable", "card_state": "lost_oral"}
    assert problem(K.PHARMACY, refused) == refused
    assert problem(K.PHOTO_STUDIO, refused) == {"code": "card_not_usable"}


def test_s1_a_caller_without_an_actor_sees_only_their_own_new_session() -> None:
    session = {"token": "ses_x", "expires_at": "t", "organization": "SP01", "other": 1}
    assert disclose_anonymous(R.SESSION, session) == {
        "token": "ses_x",
        "expires_at": "t",
        "organization": "SP01",
    }
    assert disclose_anonymous(R.PERSON, {"id": 1, "name": "张三"}) is None
    assert disclose_anonymous(R.ME, {"staff_id": 1}) is None


def test_s1_a_partner_event_is_shaped_by_the_table_per_kind() -> None:
    data = {
        "id": "evt_1",
        "sequence": 1,
        "type": "card.activated",
        "occurred_at": "t",
        "subject": {"type": "card", "id": 5},
        "person_id": 11,
        "detail": {"from": "received", "to": "active", "serial": "SN1", "failed_attempts": 1},
    }
    center = disclose(K.CENTER, R.EVENT, data)
    assert center == data  # the center: the whole (scrubbed) detail, open-ended keys too
    bank = disclose(K.BANK, R.EVENT, data)
    assert bank["person_id"] == 11
    assert bank["detail"] == {"from": "received", "to": "active", "serial": "SN1"}
    hospital = disclose(K.HOSPITAL, R.EVENT, data)
    assert "person_id" not in hospital
    assert hospital["detail"] == {"from": "received", "to": "active"}
    assert disclose(K.PHOTO_STUDIO, R.EVENT, data) == {}
    assert disclose(K.CARDHOLDER, R.EVENT, data) == {}


def test_s1_scrub_masks_mobile_numbers_in_free_text() -> None:
    """A phone number typed into a reason or a CSV line never reaches the audit trail."""
    clean = scrub("call the holder on 13912345678 or +86 13812345678; order 20261201123")
    assert "13912345678" not in clean
    assert "13812345678" not in clean
    assert "139****5678" in clean
    assert "20261201123" in clean  # not a mobile number: starts 20
