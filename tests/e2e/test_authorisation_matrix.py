"""S-1, A-5: every route of the app, called as every party, as each role where roles
differ, as a cardholder and as nobody, against a table of who may call it.

The table below is written by hand, on purpose never derived from ``access.policy``:
it is the second opinion that lets the matrix fail. A route the app serves that the
table does not name fails the test, so a new route cannot be forgotten; adding one is
one line in ``EXPECTED`` (and a body in ``BODIES`` if it takes one).

"Allowed" means the request was not refused with 401 or 403: it may still fail
validation, find a record in the wrong state or be refused by the region's policy.
Every call targets records inside the scope of every party that may make it (one
unit, one person, one card of bank ICBC), so a 404 here never hides a refusal; the
scope refusals are proven in ``test_s1_scopes.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from stdnum.cn import uscc

from sscard.access import credentials, staffadmin
from sscard.access.auth import authenticate
from sscard.access.tables import Staff
from sscard.cards import service as cards
from sscard.core.ids import luhn_complete
from sscard.events.service import subscribe
from sscard.register.model import OrgKind
from sscard.register.service import hash_token
from sscard.register.tables import Organization, Person
from tests.factories import World, next_id_number

# ------------------------------------------------------------------ who may call what

CENTER, SP, WINDOW = "center", "service_point", "bureau_window"
BANK, OUTLET, UNIT = "bank", "outlet", "unit"
HOSPITAL, PHARMACY, PLATFORM, HOTLINE = "hospital", "pharmacy", "grassroots", "hotline"
STUDIO, HOLDER = "photo_studio", "cardholder"
STAFF = {CENTER, SP, WINDOW, BANK, OUTLET, UNIT, HOSPITAL, PHARMACY, PLATFORM, HOTLINE, STUDIO}
EVERYONE = STAFF | {HOLDER}
RANK = {"operator": 0, "supervisor": 1, "administrator": 2}


def sup(kind: str) -> str:
    """``kind`` with a supervisor or administrator only."""
    return f"{kind}:supervisor"


PERSON_READERS = {CENTER, SP, WINDOW, BANK, OUTLET, UNIT, HOLDER}
FORM_READERS = {CENTER, SP, UNIT, BANK, OUTLET, HOLDER}
CARD_LISTERS = {CENTER, SP, WINDOW, BANK, OUTLET, UNIT, HOLDER}
CARD_CHECKERS = CARD_LISTERS | {HOSPITAL, PHARMACY, PLATFORM, HOTLINE}
ACTIVATORS = {OUTLET, HOSPITAL, PHARMACY, WINDOW, HOTLINE, CENTER, PLATFORM, HOLDER}
NOBODY = "nobody"  # no token at all: only the login routes let them past
ADMINS = {f"{kind}:administrator" for kind in STAFF}

# (method, path, variant) -> parties allowed ("kind" any role, "kind:role" that role or above).
EXPECTED: dict[tuple[str, str, str], set[str]] = {
    ("GET", "/me", ""): EVERYONE,
    ("POST", "/organizations", ""): {sup(CENTER)},
    ("POST", "/organizations/{org_id}/authorisations", ""): {sup(CENTER)},
    ("GET", "/organizations", ""): {CENTER, SP, WINDOW, BANK, OUTLET},
    ("POST", "/units", ""): {CENTER, SP},
    ("GET", "/units/{unit_id}", ""): {CENTER, SP, WINDOW, BANK, OUTLET, UNIT},
    ("POST", "/units/{unit_id}/agreement", ""): {CENTER, BANK, OUTLET},
    ("POST", "/persons", ""): {CENTER, SP},
    ("POST", "/persons/search", ""): PERSON_READERS,
    ("GET", "/persons", ""): PERSON_READERS,
    ("GET", "/persons/{person_id}", ""): PERSON_READERS,
    ("POST", "/persons/{person_id}/records", ""): {CENTER, SP},
    ("GET", "/persons/{person_id}/records", ""): {CENTER, SP, WINDOW, HOLDER},
    ("POST", "/batches", ""): {SP},
    ("GET", "/batches/{batch_id}", ""): {CENTER, SP, UNIT, BANK, OUTLET},
    ("POST", "/batches/{batch_id}/return", ""): {SP},
    ("POST", "/batches/{batch_id}/check", ""): {SP},
    ("POST", "/applications", ""): {SP},
    ("GET", "/applications/{application_id}", ""): FORM_READERS,
    ("GET", "/applications/{application_id}/barcode.svg", ""): FORM_READERS,
    ("POST", "/applications/{application_id}/corrections", ""): {SP, UNIT},
    ("POST", "/applications/{application_id}/return", ""): {SP},
    ("POST", "/applications/{application_id}/check", ""): {SP},
    ("POST", "/change-requests", ""): {SP},
    ("GET", "/change-requests/{request_id}", ""): {CENTER, SP, HOLDER},
    ("POST", "/change-requests/{request_id}/submit", ""): {SP},
    ("POST", "/change-requests/{request_id}/withdraw", ""): {SP},
    ("POST", "/change-requests/{request_id}/approve", ""): {sup(CENTER)},
    ("POST", "/change-requests/{request_id}/decline", ""): {sup(CENTER)},
    ("GET", "/cards", ""): CARD_LISTERS,
    ("GET", "/cards/{card_id}", ""): CARD_LISTERS,
    ("GET", "/cards/{card_id}/transitions", ""): CARD_LISTERS,
    ("POST", "/cards/{card_id}/production", ""): {BANK},
    ("POST", "/cards/{card_id}/pickups", ""): {OUTLET},
    ("POST", "/cards/{card_id}/hand-outs", ""): {UNIT},
    ("POST", "/cards/{card_id}/returns", ""): {OUTLET},
    ("POST", "/cards/{card_id}/activations", ""): ACTIVATORS,
    ("POST", "/cards/{card_id}/loss-reports", "oral"): {BANK, OUTLET, HOTLINE, HOLDER},
    ("POST", "/cards/{card_id}/loss-reports", "written"): {OUTLET},
    ("POST", "/cards/{card_id}/loss-cancellations", ""): {OUTLET},
    ("POST", "/cards/{card_id}/replacements", ""): {OUTLET},
    ("POST", "/cards/{card_id}/changes", ""): {OUTLET},
    ("POST", "/card-checks", ""): CARD_CHECKERS,
    ("POST", "/settlements", ""): {HOSPITAL, PHARMACY},
    ("POST", "/settlements/{settlement_id}/refunds", ""): {HOSPITAL, PHARMACY},
    ("POST", "/medical-accounts/inquiries", ""): {CENTER, SP, WINDOW, HOTLINE, PLATFORM, HOLDER},
    ("POST", "/medical-passwords/resets", ""): {OUTLET},
    ("POST", "/medical-passwords/changes", ""): {OUTLET, PHARMACY, PLATFORM},
    ("POST", "/bank/financial-activations", ""): {OUTLET},
    ("POST", "/bank/password-checks", ""): {OUTLET, BANK},
    ("POST", "/bank/password-resets", ""): {OUTLET},
    ("POST", "/bank/password-changes", ""): {OUTLET, BANK},
    ("POST", "/bank/accounts/search", ""): {OUTLET, BANK},
    ("POST", "/sweeps", ""): {CENTER},
    ("POST", "/calendar/schedules", ""): {sup(CENTER)},
    ("GET", "/calendar/working-days", ""): STAFF,
    ("POST", "/demo/clock", ""): {CENTER},
    # The audit trail (supervisors of the center).
    ("GET", "/audit/records", ""): {sup(CENTER)},
    ("GET", "/audit/verification", ""): {sup(CENTER)},
    # Logging in: without a token, so nobody gets past authorisation too.
    ("POST", "/auth/sessions", ""): EVERYONE | {NOBODY},
    ("POST", "/self/registrations", ""): EVERYONE | {NOBODY},
    ("POST", "/self/sessions", ""): EVERYONE | {NOBODY},
    # One's own login: every authenticated caller.
    ("POST", "/auth/totp", ""): EVERYONE,
    ("POST", "/auth/totp/confirmation", ""): EVERYONE,
    # Staff and partner credentials: administrators, on their own organization's.
    ("POST", "/staff", ""): ADMINS,
    ("GET", "/staff", ""): ADMINS,
    ("POST", "/staff/{staff_id}/password-reset", ""): ADMINS,
    ("POST", "/staff/{staff_id}/unlock", ""): ADMINS,
    ("POST", "/staff/{staff_id}/token-revocation", ""): ADMINS,
    ("POST", "/staff/{staff_id}/deactivation", ""): ADMINS,
    ("POST", "/credentials", ""): ADMINS,
    ("GET", "/credentials", ""): ADMINS,
    ("POST", "/credentials/{credential_id}/rotations", ""): ADMINS,
    ("POST", "/credentials/{credential_id}/revocation", ""): ADMINS,
    # Partner events: every organization, on its own webhooks; all dead letters: center.
    ("POST", "/webhooks", ""): STAFF,
    ("GET", "/webhooks", ""): STAFF,
    ("GET", "/webhooks/{webhook_id}", ""): STAFF,
    ("POST", "/webhooks/{webhook_id}/pause", ""): STAFF,
    ("POST", "/webhooks/{webhook_id}/resume", ""): STAFF,
    ("POST", "/webhooks/{webhook_id}/secret-rotations", ""): STAFF,
    ("GET", "/webhooks/{webhook_id}/failures", ""): STAFF,
    ("POST", "/webhooks/{webhook_id}/failures/{failure_id}/redelivery", ""): STAFF,
    ("GET", "/webhooks/{webhook_id}/attempts", ""): STAFF,
    ("POST", "/webhooks/{webhook_id}/replays", ""): STAFF,
    ("DELETE", "/webhooks/{webhook_id}", ""): STAFF,
    ("GET", "/events", ""): STAFF,
    ("GET", "/webhook-failures", ""): {CENTER},
    # The cardholder's self-service, and full views (S-1: a reason, audited).
    ("GET", "/self", ""): {HOLDER},
    ("GET", "/self/cards", ""): {HOLDER},
    ("GET", "/self/medical-account", ""): {HOLDER},
    ("GET", "/self/access-log", ""): {HOLDER},
    ("POST", "/self/disclosures", ""): {HOLDER},
    # Full views only where the disclosure policy shows the field in full: the register's
    # owners, the bank side for its own customers, the holder for themself.
    ("POST", "/persons/{person_id}/disclosures", ""): {CENTER, SP, BANK, OUTLET, HOLDER},
    ("POST", "/cards/{card_id}/disclosures", ""): {CENTER, BANK, OUTLET, HOLDER},
    # Last: it ends the caller's session (a personal token is not a session: 4xx).
    ("DELETE", "/auth/sessions/current", ""): EVERYONE,
}
# Routes anyone may call without a token.
PUBLIC = {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# Every kind's staff is called in every role (operator, supervisor, administrator).
ROLES_CALLED = dict.fromkeys(STAFF, ("operator", "supervisor", "administrator"))


def allowed(expected: set[str], kind: str, role: str) -> bool:
    for entry in expected:
        who, _, least = entry.partition(":")
        if who == kind and RANK.get(role, 0) >= RANK[least or "operator"]:
            return True
    return False


# ------------------------------------------------------------------ the routes served


def served(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, routers included (HEAD left out)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:  # an included router (FastAPI >= 0.137)
                walk(contexts())
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    found.add((method, route.path))

    walk(app.routes)
    # The OpenAPI paths are a documented view of the same routes: the walk above must
    # see at least those, or it has silently stopped seeing anything.
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            assert (method.upper(), path) in found, f"route walk missed {method} {path}"
    return found


# ------------------------------------------------------------------ the region under test


@dataclass
class Region:
    ids: dict[str, int]
    card_number: str
    bank_card_number: str
    id_number: str
    unit_code: str
    outlet_code: str
    unit: Organization


def _region(world: World) -> Region:
    """One unit (signed with ICBC), its insured person, their form and batch, their card
    (received from an ICBC outlet) and a change request: inside every caller's scope."""
    made = world.unit_card(stage="m1")
    unit, person, card = made.unit, made.person, made.card
    outlet = world.actor(OrgKind.OUTLET, "ICBC")
    with world.rt.uow() as uow:
        card = cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder").card
    request = world.change_request(
        person.id, field_name="name", new_value="李四", document="公安机关证明"
    )
    pharmacy = world.org(OrgKind.PHARMACY)
    assert card.card_number
    assert card.bank_card_number
    return Region(
        ids={
            "unit_id": unit.id,
            "person_id": person.id,
            "batch_id": made.batch.id,
            "application_id": made.application.id,
            "card_id": card.id,
            "request_id": request.id,
            "org_id": pharmacy.id,
            "settlement_id": 999_999_999,
            "failure_id": 999_999_999,
        },
        card_number=card.card_number,
        bank_card_number=card.bank_card_number,
        id_number=person.id_number,
        unit_code=unit.code,
        outlet_code=outlet.org_code,
        unit=unit,
    )


# ------------------------------------------------------------------ one body per route

ACTIVATION_CHANNEL = {
    OUTLET: "outlet",
    HOSPITAL: "hospital",
    PHARMACY: "pharmacy",
    WINDOW: "bureau_window",
    HOTLINE: "phone_12333",
    CENTER: "online",
    PLATFORM: "grassroots",
    HOLDER: "online",
}
ORAL_CHANNEL = {BANK: "bank_phone", OUTLET: "bank_phone", HOTLINE: "phone_12333"}
ORAL_CHANNEL[HOLDER] = "online_banking"
_n = itertools.count(1)


def _uscc() -> str:
    body = f"91441900M{next(_n) + 90_000_000:08d}"
    return body + uscc.calc_check_digit(body)


Body = Callable[[Region, str], Any]
BODIES: dict[tuple[str, str, str], Body] = {
    ("POST", "/organizations", ""): lambda r, k: {
        "kind": "hospital",
        "code": f"HM{next(_n)}",
        "name": "医院",
    },
    ("POST", "/organizations/{org_id}/authorisations", ""): lambda r, k: {"service": "inquiry"},
    ("POST", "/units", ""): lambda r, k: {"code": f"UM{next(_n)}", "name": "单位", "uscc": _uscc()},
    ("POST", "/units/{unit_id}/agreement", ""): lambda r, k: {"bank_code": "ICBC"},
    ("POST", "/persons", ""): lambda r, k: {
        "id_number": next_id_number(),
        "name": "新人",
        "status": "unemployed",
    },
    ("POST", "/persons/search", ""): lambda r, k: {"id_number": r.id_number},
    ("POST", "/persons/{person_id}/records", ""): lambda r, k: {
        "kind": "qualification",
        "title": "电工",
    },
    ("POST", "/batches", ""): lambda r, k: {
        "unit_code": r.unit_code,
        "stage": "m2",
        "collector": {"name": "王芳", "id_number": next_id_number()},
    },
    ("POST", "/batches/{batch_id}/check", ""): lambda r, k: {},
    ("POST", "/applications", ""): lambda r, k: {
        "person_id": r.ids["person_id"],
        "bank_code": "ICBC",
    },
    ("POST", "/applications/{application_id}/corrections", ""): lambda r, k: {
        "photo_source": "id_card_authorisation"
    },
    ("POST", "/applications/{application_id}/check", ""): lambda r, k: {"decision": "accept"},
    ("POST", "/change-requests", ""): lambda r, k: {
        "person_id": r.ids["person_id"],
        "field_name": "name",
        "new_value": "王五",
        "document": "公安机关证明",
    },
    **{
        ("POST", f"/change-requests/{{request_id}}/{action}", ""): (lambda r, k: {"reason": "x"})
        for action in ("submit", "withdraw", "approve", "decline")
    },
    ("POST", "/cards/{card_id}/production", ""): lambda r, k: {
        "card_number": f"A{next(_n) + 90_000_000:08d}",
        "serial": f"SN{next(_n) + 9_000_000_000:010d}",
        "bank_card_number": luhn_complete("622202" + f"{next(_n) + 900_000_000:012d}"),
        "outlet_code": r.outlet_code,
    },
    ("POST", "/cards/{card_id}/pickups", ""): lambda r, k: {"by": "holder"},
    ("POST", "/cards/{card_id}/returns", ""): lambda r, k: {"reason": "left_unit"},
    ("POST", "/cards/{card_id}/activations", ""): lambda r, k: {
        "channel": ACTIVATION_CHANNEL.get(k, "outlet"),
        "card_number": r.card_number,  # counter parties act on the card presented
        "medical_password": "602417",
    },
    ("POST", "/cards/{card_id}/loss-reports", "oral"): lambda r, k: {
        "kind": "oral",
        "channel": ORAL_CHANNEL.get(k, "bank_phone"),
        "card_number": r.card_number,
    },
    ("POST", "/cards/{card_id}/loss-reports", "written"): lambda r, k: {"kind": "written"},
    ("POST", "/cards/{card_id}/loss-cancellations", ""): lambda r, k: {},
    ("POST", "/cards/{card_id}/replacements", ""): lambda r, k: {},
    ("POST", "/cards/{card_id}/changes", ""): lambda r, k: {"reason": "damaged"},
    ("POST", "/card-checks", ""): lambda r, k: {"card_number": r.card_number},
    ("POST", "/settlements", ""): lambda r, k: {
        "card_number": r.card_number,
        "kind": "pharmacy" if k == PHARMACY else "outpatient",
        "amount_fen": 100,
        "new_password": "602417",
    },
    ("POST", "/settlements/{settlement_id}/refunds", ""): lambda r, k: {"amount_fen": 1},
    ("POST", "/medical-accounts/inquiries", ""): lambda r, k: {"id_number": r.id_number},
    ("POST", "/medical-passwords/resets", ""): lambda r, k: {
        "card_number": r.card_number,
        "id_number": r.id_number,
        "new_password": "602417",
    },
    ("POST", "/medical-passwords/changes", ""): lambda r, k: {
        "card_number": r.card_number,
        "old_password": "602417",
        "new_password": "613528",
    },
    ("POST", "/bank/financial-activations", ""): lambda r, k: {
        "bank_card_number": r.bank_card_number,
        "id_number": r.id_number,
        "financial_password": "602417",
    },
    ("POST", "/bank/password-checks", ""): lambda r, k: {
        "bank_card_number": r.bank_card_number,
        "financial_password": "602417",
    },
    ("POST", "/bank/password-resets", ""): lambda r, k: {
        "bank_card_number": r.bank_card_number,
        "id_number": r.id_number,
        "new_password": "602417",
    },
    ("POST", "/bank/password-changes", ""): lambda r, k: {
        "bank_card_number": r.bank_card_number,
        "old_password": "602417",
        "new_password": "613528",
    },
    ("POST", "/bank/accounts/search", ""): lambda r, k: {"bank_card_number": r.bank_card_number},
    ("POST", "/demo/clock", ""): lambda r, k: {"days": 1},
    # Logins are checked for shape before anything else: an empty body is a 422 for all.
    ("POST", "/auth/sessions", ""): lambda r, k: {},
    ("POST", "/self/registrations", ""): lambda r, k: {},
    ("POST", "/self/sessions", ""): lambda r, k: {},
    ("POST", "/auth/totp/confirmation", ""): lambda r, k: {"code": "000000"},
    ("POST", "/staff", ""): lambda r, k: {
        "name": "韩梅",
        "login": f"han{next(_n)}",
        "password": "long enough secret 7",
    },
    ("POST", "/staff/{staff_id}/password-reset", ""): lambda r, k: {
        "password": "another long secret 8"
    },
    ("POST", "/credentials", ""): lambda r, k: {"system_name": "host"},
    ("POST", "/webhooks", ""): lambda r, k: {"url": "https://partner.example/hook"},
    ("POST", "/webhooks/{webhook_id}/replays", ""): lambda r, k: {"after": None},
    ("POST", "/self/disclosures", ""): lambda r, k: {"field": "phone", "reason": "my own"},
    ("POST", "/persons/{person_id}/disclosures", ""): lambda r, k: {
        "field": "id_number",
        "reason": "verifying the holder at the counter",
    },
    ("POST", "/cards/{card_id}/disclosures", ""): lambda r, k: {
        "field": "bank_card_number",
        "reason": "verifying the holder at the counter",
    },
}
SCHEDULE = 'year = 2027\nholidays = ["2027-01-01"]\nworkdays = []\n'


# A caller with no organization (the cardholder, nobody) names records nobody has.
NONE_OWN = {"staff_id": 999_999_999, "credential_id": 999_999_999, "webhook_id": 999_999_999}


@dataclass(frozen=True)
class Caller:
    kind: str  # an OrgKind value, "cardholder" or "nobody"
    role: str
    headers: dict[str, str]
    # The caller's own organization's staff member, credential and webhook: what the
    # routes for an organization's own records are called on.
    own: dict[str, int] = field(default_factory=lambda: dict(NONE_OWN))

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.role}"


def _own_records(
    world: World, admin_token: str, cache: dict[int, dict[str, int]]
) -> dict[str, int]:
    """A staff member, a credential and a webhook of the organization of ``admin_token``
    (made once per organization, by its administrator through the real use cases)."""
    admin = authenticate(world.rt, bearer=admin_token, source="testclient").actor
    assert admin.org_id is not None
    if admin.org_id not in cache:
        with world.rt.uow() as uow:
            member, _ = staffadmin.create_member(
                uow,
                world.rt,
                actor=admin,
                org_code=None,
                name="目标",
                role="operator",
                login=f"target{next(_n)}",
                password="target member secret 9",
            )
        with world.rt.uow() as uow:
            cred, _bearer = credentials.create(
                uow,
                world.rt,
                actor=admin,
                system_name="host",
                org_code=None,
                role="operator",
                expires_in_days=None,
            )
        with world.rt.uow() as uow:
            hook = subscribe(
                uow,
                world.rt,
                actor=admin,
                url="http://127.0.0.1:9/hook",
                event_types=["*"],
                allow_loopback=True,
            )
        cache[admin.org_id] = {
            "staff_id": member.id,
            "credential_id": cred.id,
            "webhook_id": hook.subscription.id,
        }
    return cache[admin.org_id]


def _callers(world: World, region: Region, holder: Callable[[int], dict[str, str]]) -> list[Caller]:
    """Staff of a real organization of every kind (in every role where roles differ),
    the cardholder of the region's person, and nobody."""
    out: list[Caller] = []
    owned: dict[int, dict[str, int]] = {}
    for kind in OrgKind:
        if kind is OrgKind.CARDHOLDER:
            continue
        bank = "ICBC" if kind in (OrgKind.BANK, OrgKind.OUTLET) else None

        def token_of(role: str, kind: OrgKind = kind, bank: str | None = bank) -> str:
            if kind is OrgKind.UNIT:
                return world.token_for(region.unit, role)
            return world.token(kind, bank, role=role)

        own = _own_records(world, token_of("administrator"), owned)
        for role in ROLES_CALLED.get(kind.value, ("operator",)):
            headers = {"Authorization": f"Bearer {token_of(role)}"}
            out.append(Caller(kind.value, role, headers, own))
    out.append(Caller(HOLDER, "self", holder(region.ids["person_id"])))
    out.append(Caller("nobody", "-", {}))
    return out


def _call(client: TestClient, key: tuple[str, str, str], region: Region, caller: Caller) -> Any:
    method, path, _ = key
    url = path.format(**region.ids, **caller.own)
    headers = dict(caller.headers)
    kwargs: dict[str, Any] = {}
    if path == "/calendar/schedules":
        headers["content-type"] = "application/toml"
        kwargs["content"] = SCHEDULE
    elif key in BODIES:
        kwargs["json"] = BODIES[key](region, caller.kind)
    if path.startswith("/settlements"):
        headers["Idempotency-Key"] = f"m-{next(_n)}"
    if path == "/calendar/working-days":
        kwargs["params"] = {"days": 5}
    return client.request(method, url, headers=headers, **kwargs)


@pytest.fixture
def matrix(
    world: World, client: TestClient, holder: Callable[[int], dict[str, str]]
) -> tuple[Region, list[Caller]]:
    region = _region(world)
    return region, _callers(world, region, holder)


def test_s_1_every_route_is_in_the_expectation_table(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    routes = served(app)
    named = {(m, p) for m, p, _ in EXPECTED} | {("GET", p) for p in PUBLIC}
    assert routes - named == set(), "routes missing from the authorisation matrix"
    assert named - routes == set(), "the matrix names routes the app does not serve"
    ranked = {e.partition(":")[0] for who in EXPECTED.values() for e in who if ":" in e}
    assert ranked <= set(ROLES_CALLED), (
        "a kind with a role-gated route must be called in every role"
    )


def test_s_1_a_5_authorisation_matrix(
    client: TestClient, matrix: tuple[Region, list[Caller]]
) -> None:
    region, callers = matrix
    wrong: list[str] = []
    for key, expected in EXPECTED.items():
        for caller in callers:
            response = _call(client, key, region, caller)
            status = response.status_code
            where = f"{key[0]} {key[1]} {key[2]} as {caller.label}: {status} {response.text[:160]}"
            if status >= 500:
                wrong.append("server error: " + where)
            elif caller.kind == NOBODY and NOBODY in expected:
                if status in (401, 403):
                    wrong.append("expected open to nobody: " + where)
            elif caller.kind == NOBODY:
                if status != 401 or response.json().get("code") != "unauthenticated":
                    wrong.append("expected 401: " + where)
            elif allowed(expected, caller.kind, caller.role):
                if status in (401, 403):
                    wrong.append("expected allowed: " + where)
            elif status != 403 or response.json().get("code") != "forbidden":
                wrong.append("expected 403: " + where)
    assert not wrong, f"{len(wrong)} cells of the matrix differ:\n" + "\n".join(wrong)


def test_s_1_public_routes_answer_without_a_token(client: TestClient) -> None:
    for path in sorted(PUBLIC):
        response = client.get(path, follow_redirects=False)
        assert response.status_code < 400, path


def test_s_1_matrix_calls_a_real_organization_of_every_kind(
    world: World, matrix: tuple[Region, list[Caller]]
) -> None:
    _, callers = matrix
    kinds = {c.kind for c in callers}
    assert kinds == {k.value for k in OrgKind} | {"nobody"}
    with world.rt.uow() as uow:
        for caller in callers:
            if caller.kind in (HOLDER, "nobody"):
                continue
            token = caller.headers["Authorization"].removeprefix("Bearer ")
            kind = uow.session.scalar(
                select(Organization.kind)
                .join(Staff, Staff.org_id == Organization.id)
                .where(Staff.token_hash == hash_token(token))
            )
            assert kind == caller.kind
    holder = next(c for c in callers if c.kind == HOLDER).headers["Authorization"]
    signed_in = authenticate(world.rt, bearer=holder.removeprefix("Bearer "), source="test").actor
    assert signed_in.org_kind is OrgKind.CARDHOLDER
    with world.rt.uow() as uow:
        assert uow.session.get(Person, signed_in.person_id)
