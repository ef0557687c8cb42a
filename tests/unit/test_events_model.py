"""Partner events, pure: types, scope, payload allow-lists, backoff, signing, endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks import Webhook

from sscard.cards.model import Action
from sscard.core.errors import InvalidInput
from sscard.events.model import (
    MAX_ATTEMPTS,
    SCHEDULE,
    Event,
    Outcome,
    Party,
    Scope,
    UnsafeEndpoint,
    audience,
    check_event_types,
    check_url,
    event_type,
    matches,
    new_secret,
    outcome,
    partner_payload,
    party_keys,
    retry_delay,
    scrub,
    signing_input,
    visible_to,
)
from sscard.register.model import OrgKind

SHANGHAI = ZoneInfo("Asia/Shanghai")
ICBC = Party(kind=OrgKind.BANK, org_id=1, bank_code="ICBC")
CCB = Party(kind=OrgKind.BANK, org_id=2, bank_code="CCB")
UNIT = Party(kind=OrgKind.UNIT, org_id=7)
HOSPITAL = Party(kind=OrgKind.HOSPITAL, org_id=9)
CENTER = Party(kind=OrgKind.CENTER, org_id=3)


def test_every_card_move_has_a_stable_past_tense_event_type() -> None:
    names = {event_type(f"card.{a.value}") for a in Action}
    assert None not in names
    assert len(names) >= len(Action) - 1  # financial activation has one name
    assert event_type("card.activate") == "card.activated"
    assert event_type("card.report_lost_written") == "card.loss_reported_written"
    assert event_type("bank_account.freeze") == "bank_account.frozen"
    assert event_type("person.registered") == "person.registered"


def test_internal_changes_are_not_partner_events() -> None:
    for action in ("staff.created", "policy.loaded", "calendar.schedule_loaded", "webhook.paused"):
        assert event_type(action) is None


def test_s1_a_bank_receives_only_its_own_banks_card_events() -> None:
    theirs = Scope(type="card.activated", bank_code="ICBC", unit_org_id=None, actor_org_id=5)
    assert visible_to(ICBC, theirs)
    assert not visible_to(CCB, theirs)
    assert ("bank", "CCB") not in audience(theirs)


def test_s1_a_unit_receives_only_its_own_peoples_events() -> None:
    ours = Scope(type="card.handed_out", bank_code="ICBC", unit_org_id=7, actor_org_id=None)
    other = Scope(type="card.handed_out", bank_code="ICBC", unit_org_id=8, actor_org_id=None)
    assert visible_to(UNIT, ours)
    assert not visible_to(UNIT, other)


def test_s1_a_hospital_hears_only_of_what_happened_at_its_counter() -> None:
    at_its_counter = Scope(
        type="medical_account.settled", bank_code=None, unit_org_id=7, actor_org_id=9
    )
    elsewhere = Scope(
        type="card.loss_reported_written", bank_code="ICBC", unit_org_id=7, actor_org_id=5
    )
    assert visible_to(HOSPITAL, at_its_counter)
    assert not visible_to(HOSPITAL, elsewhere)
    password = Scope(
        type="medical_password.changed", bank_code=None, unit_org_id=None, actor_org_id=9
    )
    assert not visible_to(HOSPITAL, password)  # a family it never receives


def test_the_audience_keys_find_exactly_the_parties_visible_to_allows() -> None:
    scope = Scope(type="card.activated", bank_code="ICBC", unit_org_id=7, actor_org_id=9)
    for party in (ICBC, CCB, UNIT, HOSPITAL, CENTER):
        heard = bool(party_keys(party) & audience(scope))
        assert visible_to(party, scope) <= heard  # never visible without a shared key


def _event(**detail: object) -> Event:
    return Event(
        id=42,
        seq=40,
        type="card.activated",
        occurred_at=datetime(2026, 3, 2, 9, tzinfo=SHANGHAI),
        subject_type="card",
        subject_id=5,
        person_id=11,
        detail=detail,
    )


def test_s1_payload_fields_are_allow_listed_per_kind_of_party() -> None:
    ev = _event(**{"from": "received", "to": "active", "transition_id": 3, "agent": {"name": "李"}})
    center = partner_payload(OrgKind.CENTER, ev)
    bank = partner_payload(OrgKind.BANK, ev)
    pharmacy = partner_payload(OrgKind.PHARMACY, ev)
    assert center["detail"]["agent"] == {"name": "李"}
    assert "agent" not in bank["detail"]
    assert bank["detail"]["transition_id"] == 3
    assert pharmacy["detail"] == {"from": "received", "to": "active"}
    assert "person_id" not in pharmacy
    assert bank["person_id"] == 11
    assert bank["id"] == "evt_42"
    assert bank["subject"] == {"type": "card", "id": 5}


def test_s1_an_event_never_carries_a_full_id_or_bank_card_number() -> None:
    clean = scrub({"note": "holder 441900199005171234 card 6222021000000000017", "n": [1]})
    assert clean["note"] == "holder 4419**********1234 card 622202*********0017"
    assert clean["n"] == [1]


def test_backoff_grows_from_seconds_to_days_and_then_gives_up() -> None:
    waits = [retry_delay(n, 0.0) for n in range(1, len(SCHEDULE) + 1)]
    assert waits[0] == timedelta(seconds=5)
    assert waits[1] == timedelta(seconds=30)
    assert all(w is not None for w in waits)
    assert waits == sorted(waits)  # type: ignore[type-var]
    total = sum((w for w in waits if w is not None), timedelta())
    assert timedelta(days=2) < total < timedelta(days=4)
    assert retry_delay(len(SCHEDULE) + 1, 0.5) is None


def test_backoff_jitter_stretches_a_wait_by_at_most_ten_percent() -> None:
    low, high = retry_delay(3, 0.0), retry_delay(3, 0.999)
    assert low == timedelta(minutes=2)
    assert high is not None
    assert timedelta(minutes=2) < high <= timedelta(minutes=2.2)


def test_outcomes_2xx_delivers_410_and_exhaustion_fail_for_good() -> None:
    assert outcome(204, 1) is Outcome.DELIVERED
    assert outcome(503, 1) is Outcome.RETRY
    assert outcome(None, 2) is Outcome.RETRY  # timeout or connection error
    assert outcome(410, 1) is Outcome.DEAD
    assert outcome(500, MAX_ATTEMPTS) is Outcome.DEAD


def test_signatures_follow_standard_webhooks_and_verify_with_the_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    at = datetime.now(SHANGHAI)
    body = '{"type":"card.activated"}'
    signature = Webhook(secret).sign(
        "evt_1", datetime.fromtimestamp(int(at.timestamp()), UTC), body
    )
    assert signing_input("evt_1", at, body) == f"evt_1.{int(at.timestamp())}.{body}"
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify(body, headers) == {"type": "card.activated"}


def test_event_type_filters_take_all_families_or_exact_types() -> None:
    assert check_event_types(["card.*", "*"]) == ["*"]
    assert matches(["card.*"], "card.activated")
    assert not matches(["card.*"], "person.registered")
    assert matches(["bank_account.frozen"], "bank_account.frozen")
    with pytest.raises(InvalidInput):
        check_event_types(["cards.activated"])
    with pytest.raises(InvalidInput):
        check_event_types([])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://partner.example/x",
        "https://user:pw@partner.example/x",
        "http://10.1.2.3/hook",
        "http://192.168.0.9/hook",
        "http://169.254.169.254/latest",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
    ],
)
def test_endpoints_on_private_networks_or_with_credentials_are_refused(url: str) -> None:
    with pytest.raises(UnsafeEndpoint):
        check_url(url, allow_loopback=False)


def test_loopback_endpoints_only_when_allowed_and_resolved_addresses_count() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_loopback=True) == "http://127.0.0.1:9/x"
    assert check_url("https://partner.example/x", allow_loopback=False, addresses=["93.184.216.34"])
    with pytest.raises(UnsafeEndpoint):
        check_url("https://partner.example/x", allow_loopback=False, addresses=["10.0.0.5"])
