"""Partner events, pure: types, scope, payload allow-lists, backoff, signing, endpoints."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks import Webhook

from sscard.cards.model import Action
from sscard.core.errors import InvalidInput
from sscard.events import endpoints
from sscard.events.model import (
    INTERNAL_FAMILIES,
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
    known_families,
    matches,
    new_secret,
    outcome,
    partner_payload,
    party_keys,
    retry_delay,
    scrub,
    signing_input,
    unsafe_address,
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


# ------------------------------------------------------------------ internal audit actions

SRC = Path(__file__).resolve().parents[2] / "src" / "sscard"
AUDIT_WRITERS = {"record", "record_many", "_audit"}
DOTTED = re.compile(r"[a-z_]+\.[a-z_]+")


def _names_action(target: ast.expr) -> bool:
    """``action = ...`` or ``action, other = ...``."""
    if isinstance(target, ast.Tuple):
        return any(_names_action(t) for t in target.elts)
    return isinstance(target, ast.Name) and target.id == "action"


def _audit_actions() -> tuple[set[str], set[str]]:
    """Every audit action the code writes, read from its source: ``action=`` literals
    (both sides of a conditional), literals handed to the audit writers, and the
    family of each ``action=f"<family>.{...}"``. Answers (actions, families)."""
    actions: set[str] = set()
    families: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.expr] = []
            if isinstance(node, ast.keyword) and node.arg == "action":
                values.append(node.value)
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in AUDIT_WRITERS:
                    values.extend(node.args)
            elif isinstance(node, ast.Assign) and any(_names_action(t) for t in node.targets):
                values.extend(
                    node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                )
            for value in values:
                for v in (value.body, value.orelse) if isinstance(value, ast.IfExp) else (value,):
                    if isinstance(v, ast.Constant) and isinstance(v.value, str):
                        if DOTTED.fullmatch(v.value):
                            actions.add(v.value)
                    elif isinstance(v, ast.JoinedStr) and v.values:
                        first = v.values[0]
                        if isinstance(first, ast.Constant) and str(first.value).endswith("."):
                            families.add(str(first.value)[:-1])
    return actions, families


def test_every_audit_action_the_code_writes_is_a_partner_event_or_internal() -> None:
    actions, families = _audit_actions()
    # what the scan must find (else it has gone blind), including the indirect ones
    assert {
        "auth.login_failed",
        "auth.locked",
        "auth.session_opened",
        "credential.rotated",
        "self.login_registered",
        "self.password_reset",
        "staff.password_reset",
        "keys.data_rotated",
        "keys.index_rotated",
        "card.order",
        "person.registered",
    } <= actions
    assert {"card", "webhook", "disclosure", "inquiry", "medical_password"} <= families
    families |= {"bank_account"}  # f"{SUBJECT}.{action}" in sscard.events.bank_acts
    partner = known_families()
    unclassified = {a for a in actions if a.partition(".")[0] not in partner | INTERNAL_FAMILIES}
    assert unclassified == set(), "classify these families as partner events or internal"
    assert families - (partner | INTERNAL_FAMILIES) == set()
    assert not partner & INTERNAL_FAMILIES
    for action in actions:
        family = action.partition(".")[0]
        if family in INTERNAL_FAMILIES:
            assert event_type(action) is None, action
        else:
            assert (event_type(action) or "").partition(".")[0] == family, action


@pytest.mark.parametrize(
    "action",
    [
        "auth.login_failed",
        "auth.locked",
        "auth.session_opened",
        "auth.session_ended",
        "auth.totp_enrolled",
        "auth.totp_enabled",
        "credential.created",
        "credential.rotated",
        "credential.revoked",
        "self.login_registered",
        "self.password_reset",
        "staff.password_reset",
        "staff.unlocked",
        "keys.data_rotated",
        "keys.index_rotated",
        "audit.sealed",
        "disclosure.id_number",
        "inquiry.get_person",
    ],
)
def test_login_credential_self_service_and_key_actions_are_not_partner_events(
    action: str,
) -> None:
    assert event_type(action) is None


def test_an_unknown_family_is_not_a_partner_event_either() -> None:
    assert event_type("brand_new.thing_happened") is None


# ------------------------------------------------------------------ addresses and pinning


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",  # shared (carrier-grade NAT)
        "127.0.0.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",  # documentation
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "not-an-address",
    ],
)
def test_unsafe_addresses_are_every_non_public_one(address: str) -> None:
    assert unsafe_address(address, allow_loopback=False)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_safe(address: str) -> None:
    assert not unsafe_address(address, allow_loopback=False)


def test_loopback_only_is_let_through_when_allowed() -> None:
    assert not unsafe_address("127.0.0.1", allow_loopback=True)
    assert not unsafe_address("::1", allow_loopback=True)
    assert unsafe_address("10.0.0.5", allow_loopback=True)
    assert unsafe_address("169.254.169.254", allow_loopback=True)


def _dns(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    return lambda host: table.get(host, [])


def test_a_host_that_does_not_resolve_is_refused_with_what_to_do() -> None:
    with pytest.raises(UnsafeEndpoint) as refused:
        endpoints.pin("https://nowhere.example/x", allow_loopback=False, resolver=_dns({}))
    assert refused.value.code == "unsafe_endpoint"
    assert refused.value.field == "url"
    assert "A/AAAA" in refused.value.detail


def test_a_host_with_any_private_address_is_refused_in_the_same_words() -> None:
    dns = _dns({"mixed.example": ["93.184.216.34", "10.0.0.5"], "nowhere.example": []})
    with pytest.raises(UnsafeEndpoint) as mixed:
        endpoints.pin("https://mixed.example/x", allow_loopback=False, resolver=dns)
    with pytest.raises(UnsafeEndpoint) as nowhere:
        endpoints.pin("https://nowhere.example/x", allow_loopback=False, resolver=dns)
    # one answer: the refusal tells nothing about which internal names exist
    assert mixed.value.detail.replace("mixed", "nowhere") == nowhere.value.detail


def test_a_target_is_pinned_to_the_checked_address_keeping_the_name_for_host_and_tls() -> None:
    dns = _dns({"partner.example": ["93.184.216.34", "93.184.216.35"]})
    target = endpoints.pin(
        "https://partner.example:8443/hooks?x=1", allow_loopback=False, resolver=dns
    )
    assert target.url == "https://93.184.216.34:8443/hooks?x=1"
    assert (target.address, target.host_header, target.sni_hostname) == (
        "93.184.216.34",
        "partner.example:8443",
        "partner.example",
    )
    v6 = endpoints.pin(
        "http://partner.example/h",
        allow_loopback=False,
        resolver=_dns({"partner.example": ["2606:4700::1111"]}),
    )
    assert (v6.url, v6.host_header, v6.sni_hostname) == (
        "http://[2606:4700::1111]/h",
        "partner.example",
        None,  # no TLS
    )
    literal = endpoints.pin("https://93.184.216.34/h", allow_loopback=False, resolver=_dns({}))
    assert (literal.url, literal.sni_hostname) == ("https://93.184.216.34/h", None)
