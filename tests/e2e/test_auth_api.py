"""Logging in over HTTP: staff passwords, TOTP, sessions, lockout, credentials, cardholders."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sscard.access import staffadmin
from sscard.access.model import Role
from sscard.access.tables import AuthSession, Staff
from sscard.cards.model import CardState
from sscard.core.errors import DomainError
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number

PASSWORD = "correct horse battery"
HOLDER_PASSWORD = "my own secret 1"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def member(
    world: World,
    *,
    kind: OrgKind = OrgKind.CENTER,
    login: str = "li.lei",
    role: str = "operator",
    with_token: bool = False,
) -> tuple[Staff, str | None, str]:
    """A staff member with a login, made by an administrator; (staff, token, org code)."""
    base = world.actor(kind)
    admin = replace(base, role=Role.ADMINISTRATOR.value)
    with world.rt.uow() as uow:
        staff, token = staffadmin.create_member(
            uow,
            world.rt,
            actor=admin,
            org_code=None,
            name="Li Lei",
            role=role,
            login=login,
            password=PASSWORD,
            with_token=with_token,
        )
    return staff, token, base.org_code


def login(client: TestClient, org: str, name: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(
        "/auth/sessions", json={"org_code": org, "login": name, "password": password, **extra}
    )


def session_of(client: TestClient, org: str, name: str = "li.lei", **extra: Any) -> str:
    token: str = ok(login(client, org, name, **extra), 201)["token"]
    return token


def admin_session(world: World, client: TestClient, kind: OrgKind = OrgKind.CENTER) -> str:
    _, _, org = member(world, kind=kind, login="boss", role="administrator")
    return session_of(client, org, "boss")


@pytest.fixture
def argon2_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2id verification run (login passwords and card passwords alike)."""
    from argon2 import PasswordHasher

    calls: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append(hash if isinstance(hash, str) else hash.decode())
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return calls


@pytest.fixture
def pin_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every keyed check of a card password (``core.passwords.PinKey``)."""
    from sscard.core.passwords import PinKey

    calls: list[str] = []
    real = PinKey.matches

    def counting(self: PinKey, stored: str, subject: str, pin: str) -> bool:
        calls.append(stored)
        return real(self, stored, subject, pin)

    monkeypatch.setattr(PinKey, "matches", counting)
    return calls


# ---------------------------------------------------------------- staff login


def test_staff_login_opens_a_session_that_acts_as_the_member(
    world: World, client: TestClient
) -> None:
    staff, _, org = member(world)
    answer = ok(login(client, org, "li.lei"), 201)
    assert answer["token"].startswith("ses_")
    assert answer["idle_timeout_minutes"] == 30
    me = ok(client.get("/me", headers=bearer(answer["token"])))
    assert (me["staff_id"], me["kind"], me["authenticated_by"]) == (staff.id, "person", "session")
    assert me["organization"] == org


def test_login_name_is_case_insensitive_and_password_is_not(
    world: World, client: TestClient
) -> None:
    _, _, org = member(world)
    assert login(client, org, "LI.LEI").status_code == 201
    assert login(client, org, "li.lei", PASSWORD.upper()).status_code == 401


def test_unknown_login_and_wrong_password_get_identical_answers(
    world: World, client: TestClient
) -> None:
    _, _, org = member(world)
    wrong = login(client, org, "li.lei", "not the password")
    unknown = login(client, org, "nobody", "not the password")
    other_org = login(client, "NOSUCHORG", "li.lei", "not the password")
    assert wrong.status_code == unknown.status_code == other_org.status_code == 401
    assert wrong.json() == unknown.json() == other_org.json()
    assert wrong.json()["code"] == "login_failed"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too_short"),
        ("12345678901234", "only_digits"),
        ("my name is Li Lei!", "contains_name"),
        ("li.lei-password", "contains_name"),
    ],
)
def test_a_new_login_password_breaking_a_rule_is_refused_naming_it(
    world: World, client: TestClient, password: str, reason: str
) -> None:
    admin = admin_session(world, client)
    body = {"name": "Li Lei", "login": "li.lei", "password": password, "role": "operator"}
    problem = client.post("/staff", headers=bearer(admin), json=body)
    assert problem.status_code == 422, problem.text
    assert (problem.json()["code"], problem.json()["reason"]) == ("invalid_input", reason)
    assert problem.json()["field"] == "password"
    assert password not in problem.text


# ---------------------------------------------------------------- lockout


def test_five_wrong_passwords_lock_the_login_until_an_administrator_unlocks_it(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)
    staff, _, org = member(world)
    for _ in range(4):
        assert login(client, org, "li.lei", "wrong password!").json()["code"] == "login_failed"
    fifth = login(client, org, "li.lei", "wrong password!")
    assert fifth.status_code == 423
    assert fifth.json()["code"] == "login_locked"
    unlocks = datetime.fromisoformat(fifth.json()["unlocks_at"])
    assert unlocks == world.rt.now() + timedelta(minutes=15)
    assert login(client, org, "li.lei").status_code == 423  # even the right password
    state = ok(client.post(f"/staff/{staff.id}/unlock", headers=bearer(admin)))
    assert (state["failed_attempts"], state["locked_until"]) == (0, None)
    assert login(client, org, "li.lei").status_code == 201


def test_a_locked_login_does_the_same_password_work_as_a_wrong_one(
    world: World, client: TestClient, argon2_checks: list[str]
) -> None:
    _, _, org = member(world)
    for _ in range(4):
        argon2_checks.clear()
        assert login(client, org, "li.lei", "wrong password!").status_code == 401
        assert len(argon2_checks) == 1
    assert login(client, org, "li.lei", "wrong password!").status_code == 423
    for password in ("wrong password!", PASSWORD):
        argon2_checks.clear()
        assert login(client, org, "li.lei", password).status_code == 423
        assert len(argon2_checks) == 1
        assert argon2_checks[0].startswith("$argon2id$")


def test_a_lockout_runs_out_after_fifteen_minutes(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    for _ in range(5):
        login(client, org, "li.lei", "wrong password!")
    world.clock.advance(timedelta(minutes=14))
    assert login(client, org, "li.lei").status_code == 423
    world.clock.advance(timedelta(minutes=1))
    assert login(client, org, "li.lei").status_code == 201


def test_a_successful_login_resets_the_count_of_failures(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    for _ in range(4):
        login(client, org, "li.lei", "wrong password!")
    assert login(client, org, "li.lei").status_code == 201
    for _ in range(4):
        assert login(client, org, "li.lei", "wrong password!").status_code == 401
    assert login(client, org, "li.lei").status_code == 201


def test_only_an_administrator_of_the_organization_manages_its_staff(
    world: World, client: TestClient
) -> None:
    staff, _, _ = member(world)  # a center member
    operator = world.token(OrgKind.CENTER)
    refused = client.post(f"/staff/{staff.id}/unlock", headers=bearer(operator))
    assert refused.status_code == 403
    assert refused.json()["reason"] == "role"  # the table asks for an administrator
    sp_admin = admin_session(world, client, OrgKind.SERVICE_POINT)
    other = client.post(f"/staff/{staff.id}/deactivation", headers=bearer(sp_admin))
    assert other.status_code == 403
    assert other.json()["reason"] == "other_organization"
    foreign = client.post(
        "/staff",
        headers=bearer(sp_admin),
        json={"name": "Han Mei", "login": "han", "password": PASSWORD, "org_code": "CENTER1"},
    )
    assert foreign.status_code in (403, 404)


def test_the_centers_administrator_adds_staff_to_any_organization(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)
    sp = world.actor(OrgKind.SERVICE_POINT)
    made = ok(
        client.post(
            "/staff",
            headers=bearer(admin),
            json={
                "name": "Han Mei",
                "login": "han.mei",
                "password": PASSWORD,
                "role": "supervisor",
                "org_code": sp.org_code,
            },
        ),
        201,
    )
    assert (made["org_id"], made["role"], made["login"]) == (sp.org_id, "supervisor", "han.mei")
    assert made["has_token"] is False
    me = ok(client.get("/me", headers=bearer(session_of(client, sp.org_code, "han.mei"))))
    assert me["role"] == "supervisor"
    listed = ok(client.get(f"/staff?org_code={sp.org_code}&limit=1", headers=bearer(admin)))
    assert len(listed["items"]) == 1
    assert listed["next"] is not None
    rest = ok(
        client.get(f"/staff?org_code={sp.org_code}&after={listed['next']}", headers=bearer(admin))
    )
    logins = {m["login"]: m for m in listed["items"] + rest["items"]}
    assert logins["han.mei"]["failed_attempts"] == 0
    again = client.post(
        "/staff",
        headers=bearer(admin),
        json={"name": "Han Two", "login": "han.mei", "password": PASSWORD, "org_code": sp.org_code},
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_exists"


# ---------------------------------------------------------------- TOTP


def test_totp_once_confirmed_is_required_and_each_code_works_once(
    world: World, client: TestClient
) -> None:
    _, _, org = member(world)
    first = session_of(client, org)
    enrolment = ok(client.post("/auth/totp", headers=bearer(first)), 201)
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    # Not yet confirmed: a password alone still logs in.
    assert login(client, org, "li.lei").status_code == 201
    wrong = client.post("/auth/totp/confirmation", headers=bearer(first), json={"code": "000000"})
    assert wrong.status_code == 422
    assert wrong.json()["reason"] == "wrong_code"
    code = totp.at(world.rt.now())
    confirmed = client.post("/auth/totp/confirmation", headers=bearer(first), json={"code": code})
    assert ok(confirmed) == {"enabled": True}

    needs = login(client, org, "li.lei")
    assert needs.status_code == 401
    assert needs.json()["code"] == "totp_required"
    # The code that confirmed the enrolment is used up; so is every code used once.
    assert login(client, org, "li.lei", totp=code).json()["code"] == "login_failed"
    world.clock.advance(timedelta(seconds=30))
    fresh = totp.at(world.rt.now())
    assert login(client, org, "li.lei", totp=fresh).status_code == 201
    reused = login(client, org, "li.lei", totp=fresh)
    assert (reused.status_code, reused.json()["code"]) == (401, "login_failed")
    assert login(client, org, "li.lei", "bad password!!", totp=fresh).status_code == 401
    again = client.post("/auth/totp", headers=bearer(first))
    assert (again.status_code, again.json()["reason"]) == (409, "totp_enabled")


def test_wrong_totp_codes_count_toward_the_lockout(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    first = session_of(client, org)
    secret = ok(client.post("/auth/totp", headers=bearer(first)), 201)["secret"]
    code = pyotp.TOTP(secret).at(world.rt.now())
    ok(client.post("/auth/totp/confirmation", headers=bearer(first), json={"code": code}))
    for _ in range(4):
        assert login(client, org, "li.lei", totp="123456").status_code == 401
    assert login(client, org, "li.lei", totp="123456").status_code == 423


# ---------------------------------------------------------------- sessions


def test_a_session_idle_for_thirty_minutes_expires(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    token = session_of(client, org)
    for _ in range(3):  # used every 29 minutes, it stays alive
        world.clock.advance(timedelta(minutes=29))
        ok(client.get("/me", headers=bearer(token)))
    world.clock.advance(timedelta(minutes=30))
    expired = client.get("/me", headers=bearer(token))
    assert expired.status_code == 401
    assert (expired.json()["code"], expired.json()["reason"]) == ("session_expired", "idle")


def test_a_session_ends_after_twelve_hours_however_busy(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    token = session_of(client, org)
    for _ in range(35):  # 11 h 40 min of steady use
        world.clock.advance(timedelta(minutes=20))
        ok(client.get("/me", headers=bearer(token)))
    world.clock.advance(timedelta(minutes=20))
    expired = client.get("/me", headers=bearer(token))
    assert (expired.json()["code"], expired.json()["reason"]) == ("session_expired", "absolute")


def test_a_session_is_touched_at_most_once_a_minute(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    token = session_of(client, org)
    start = world.rt.now()

    def last_seen() -> Any:
        with world.rt.uow() as uow:
            return uow.session.scalar(
                select(AuthSession.last_seen_at).order_by(AuthSession.id.desc()).limit(1)
            )

    world.clock.advance(timedelta(seconds=20))
    ok(client.get("/me", headers=bearer(token)))
    ok(client.get("/me", headers=bearer(token)))
    assert last_seen() == start
    world.clock.advance(timedelta(seconds=45))
    ok(client.get("/me", headers=bearer(token)))
    assert last_seen() == world.rt.now()


def test_logging_out_ends_the_session(world: World, client: TestClient) -> None:
    _, _, org = member(world)
    token = session_of(client, org)
    other = session_of(client, org)
    assert client.delete("/auth/sessions/current", headers=bearer(token)).status_code == 204
    ended = client.get("/me", headers=bearer(token))
    assert (ended.status_code, ended.json()["code"]) == (401, "session_ended")
    ok(client.get("/me", headers=bearer(other)))  # another session of the member lives on


def test_deactivation_ends_the_members_sessions_and_token_at_once(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)
    staff, token, org = member(world, with_token=True)
    assert token is not None
    session = session_of(client, org)
    ok(client.get("/me", headers=bearer(token)))
    made = ok(client.post(f"/staff/{staff.id}/deactivation", headers=bearer(admin)))
    assert (made["active"], made["has_token"]) == (False, False)
    assert client.get("/me", headers=bearer(session)).json()["code"] == "session_ended"
    assert client.get("/me", headers=bearer(token)).json()["code"] == "unauthenticated"
    assert login(client, org, "li.lei").json()["code"] == "login_failed"
    twice = client.post(f"/staff/{staff.id}/deactivation", headers=bearer(admin))
    assert twice.status_code == 409


def test_a_password_reset_sets_the_new_password_and_ends_sessions(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)
    staff, _, org = member(world)
    old = session_of(client, org)
    new = "a brand new secret"
    ok(
        client.post(
            f"/staff/{staff.id}/password-reset", headers=bearer(admin), json={"password": new}
        )
    )
    assert client.get("/me", headers=bearer(old)).json()["code"] == "session_ended"
    assert login(client, org, "li.lei").status_code == 401
    assert login(client, org, "li.lei", new).status_code == 201


def test_a_revoked_personal_token_is_refused(world: World, client: TestClient) -> None:
    admin = admin_session(world, client)
    staff, token, _ = member(world, with_token=True)
    assert token is not None
    ok(client.post(f"/staff/{staff.id}/token-revocation", headers=bearer(admin)))
    assert client.get("/me", headers=bearer(token)).status_code == 401


# ---------------------------------------------------------------- partner credentials


def test_a_partner_credential_acts_as_a_service_account_and_rotates_with_grace(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client, OrgKind.HOSPITAL)
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "HIS"}), 201)
    old = made["bearer"]
    assert old.startswith(made["key_id"] + ".")
    me = ok(client.get("/me", headers=bearer(old)))
    assert (me["kind"], me["authenticated_by"]) == ("service", "credential")
    assert me["organization_kind"] == "hospital"
    assert "accounts.settle" in me["operations"]

    listed = ok(client.get("/credentials", headers=bearer(admin)))
    assert [c["key_id"] for c in listed["items"]] == [made["key_id"]]
    assert listed["items"][0]["last_used_at"] is not None
    secret = old.split(".", 1)[1]
    assert secret not in str(listed)

    rotated = ok(
        client.post(
            f"/credentials/{made['id']}/rotations", headers=bearer(admin), json={"grace_hours": 2}
        )
    )
    new = rotated["bearer"]
    assert new != old
    assert rotated["key_id"] == made["key_id"]
    ok(client.get("/me", headers=bearer(old)))  # within the grace period
    ok(client.get("/me", headers=bearer(new)))
    world.clock.advance(timedelta(hours=2))
    gone = client.get("/me", headers=bearer(old))
    assert (gone.status_code, gone.json()["code"]) == (401, "credential_expired")
    ok(client.get("/me", headers=bearer(new)))

    admin = session_of(client, world.actor(OrgKind.HOSPITAL).org_code, "boss")  # idled out
    ok(client.post(f"/credentials/{made['id']}/revocation", headers=bearer(admin)))
    revoked = client.get("/me", headers=bearer(new))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "credential_revoked")
    assert (
        client.post(f"/credentials/{made['id']}/rotations", headers=bearer(admin)).status_code
        == 409
    )


def test_a_rotation_uses_the_policys_grace_of_a_day_by_default(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "HR"}), 201)
    rotated = ok(client.post(f"/credentials/{made['id']}/rotations", headers=bearer(admin)))
    assert rotated["previous_secret_valid_until"] is not None
    world.clock.advance(timedelta(hours=23, minutes=59))
    ok(client.get("/me", headers=bearer(made["bearer"])))
    world.clock.advance(timedelta(minutes=1))
    assert client.get("/me", headers=bearer(made["bearer"])).status_code == 401


def test_a_wrong_secret_of_a_known_key_is_refused(world: World, client: TestClient) -> None:
    admin = admin_session(world, client)
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "HR"}), 201)
    forged = client.get("/me", headers=bearer(made["key_id"] + ".guessed"))
    assert (forged.status_code, forged.json()["code"]) == (401, "unauthenticated")


def test_a_wrong_secret_tells_nothing_of_a_revoked_or_expired_credential(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)

    def made(**extra: Any) -> Any:
        body = {"system_name": "HR", **extra}
        return ok(client.post("/credentials", headers=bearer(admin), json=body), 201)

    unknown = client.get("/me", headers=bearer("ak_nosuchkey.guessed"))
    assert (unknown.status_code, unknown.json()["code"]) == (401, "unauthenticated")
    revoked, expiring, rotated = made(), made(expires_in_days=1), made()
    ok(client.post(f"/credentials/{revoked['id']}/revocation", headers=bearer(admin)))
    ok(
        client.post(
            f"/credentials/{rotated['id']}/rotations",
            headers=bearer(admin),
            json={"grace_hours": 1},
        )
    )
    world.clock.advance(timedelta(days=1))
    admin = session_of(client, world.actor(OrgKind.CENTER).org_code, "boss")  # idled out
    for cred, code in (
        (revoked, "credential_revoked"),
        (expiring, "credential_expired"),
        (rotated, "credential_expired"),  # its old secret was rotated out
    ):
        forged = client.get("/me", headers=bearer(cred["key_id"] + ".guessed"))
        assert (forged.status_code, forged.json()) == (unknown.status_code, unknown.json())
        right = client.get("/me", headers=bearer(cred["bearer"]))  # only the secret tells
        assert (right.status_code, right.json()["code"]) == (401, code)


def test_only_administrators_create_credentials(world: World, client: TestClient) -> None:
    operator = world.token(OrgKind.HOSPITAL)
    refused = client.post("/credentials", headers=bearer(operator), json={"system_name": "HIS"})
    assert refused.status_code == 403
    admin = admin_session(world, client)
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "X"}), 201)
    service = client.post("/credentials", headers=bearer(made["bearer"]), json={"system_name": "Y"})
    assert service.status_code == 403


# ---------------------------------------------------------------- cardholders


def cardholder(
    world: World, state: CardState = CardState.ACTIVE, *, pin: bool = True
) -> tuple[Person, str]:
    """A holder of a card in ``state``, with consumption password 482913 (if ``pin``)."""
    card = world.card(state)
    if pin:
        person = world.set_consumption_password(card.person_id, "482913")
    else:
        with world.rt.uow() as uow:
            found = uow.session.get(Person, card.person_id)
            assert found is not None
            person = found
    return person, card.card_number or ""


def test_a_cardholder_registers_with_the_card_and_logs_in_to_self_service(
    world: World, client: TestClient
) -> None:
    person, card_number = cardholder(world)
    body = {
        "id_number": person.id_number,
        "card_number": card_number,
        "medical_password": "482913",
        "password": "my own secret 1",
    }
    assert ok(client.post("/self/registrations", json=body), 201)["person_id"] == person.id
    session = ok(
        client.post(
            "/self/sessions", json={"id_number": person.id_number, "password": "my own secret 1"}
        ),
        201,
    )
    me = ok(client.get("/me", headers=bearer(session["token"])))
    assert (me["kind"], me["organization_kind"], me["organization"]) == (
        "cardholder",
        "cardholder",
        "SELF",
    )
    assert me["person_id"] == person.id
    assert me["staff_id"] is None
    assert me["id_number"] == person.id_number[:4] + "*" * 10 + person.id_number[-4:]
    assert me["name"] == person.name[0] + "*" * (len(person.name) - 1)
    assert person.id_number not in str(me)
    # The cardholder's own operations, each on their own record only (S-1).
    assert "self.read" in me["operations"]
    assert set(me["scopes"].values()) == {"own_person"}
    out = client.delete("/auth/sessions/current", headers=bearer(session["token"]))
    assert out.status_code == 204
    assert client.get("/me", headers=bearer(session["token"])).json()["code"] == "session_ended"


def register(
    client: TestClient,
    person: Person | str,
    card_number: str,
    pin: str = "482913",
    password: str = HOLDER_PASSWORD,
) -> Any:
    return client.post(
        "/self/registrations",
        json={
            "id_number": person if isinstance(person, str) else person.id_number,
            "card_number": card_number,
            "medical_password": pin,
            "password": password,
        },
    )


def self_login(client: TestClient, person: Person, password: str = HOLDER_PASSWORD) -> Any:
    return client.post("/self/sessions", json={"id_number": person.id_number, "password": password})


def test_wrong_proofs_at_registration_never_touch_the_consumption_password_lock(
    world: World, client: TestClient
) -> None:
    from sscard.accounts.passwords import verify
    from sscard.accounts.tables import MedicalPassword

    person, card_number = cardholder(world)
    for _ in range(4):  # more than the P-2 limit of 3
        wrong = register(client, person, card_number, pin="111999")
        assert (wrong.status_code, wrong.json()["code"]) == (422, "not_verified")
        assert "tries_left" not in wrong.json()
    with world.rt.uow() as uow:
        row = uow.session.get(MedicalPassword, person.id)
        assert row is not None
        assert (row.failed_attempts, row.locked_at) == (0, None)
    # The holder still pays, and still registers, with the right password.
    with world.rt.uow() as uow:
        verify(
            uow, world.rt, actor=world.actor(OrgKind.OUTLET), person_id=person.id, password="482913"
        )
    assert ok(register(client, person, card_number), 201)["person_id"] == person.id


def test_every_failed_registration_proof_gets_one_answer_after_the_same_work(
    world: World, client: TestClient, pin_checks: list[str]
) -> None:
    from sscard.accounts.passwords import verify
    from sscard.accounts.tables import MedicalPassword

    person, card_number = cardholder(world)
    _, other_card = cardholder(world)
    lost, lost_card = cardholder(world, CardState.LOST_ORAL)
    locked, locked_card = cardholder(world)
    outlet = world.actor(OrgKind.OUTLET)
    for _ in range(3):  # P-2 lock by wrong entries at a counter
        with pytest.raises(DomainError), world.rt.uow() as uow:
            verify(uow, world.rt, actor=outlet, person_id=locked.id, password="111999")
    unset, unset_card = cardholder(world, pin=False)
    answers: dict[str, tuple[int, Any]] = {}
    cases: dict[str, tuple[Person | str, str]] = {
        "unknown ID number": (next_id_number(), card_number),
        "person without a card": (world.person(), card_number),
        "card not theirs": (person, other_card),
        "no such card": (person, "A99999999"),
        "card not in hand": (lost, lost_card),
        "wrong password": (person, card_number),
        "password locked": (locked, locked_card),
        "password never set": (unset, unset_card),
    }
    for name, (who, number) in cases.items():
        pin_checks.clear()
        pin = "111999" if name == "wrong password" else "482913"
        answer = register(client, who, number, pin=pin)
        assert len(pin_checks) == 1, name  # one keyed check, whatever failed
        assert pin_checks[0].startswith("pv1:"), name
        answers[name] = (answer.status_code, answer.json())
    first = answers["unknown ID number"]
    assert first[0] == 422
    assert first[1]["code"] == "not_verified"
    assert "field" not in first[1]
    for name, answer in answers.items():
        assert answer == first, name
    with world.rt.uow() as uow:  # the consumption passwords are untouched
        rows = [uow.session.get(MedicalPassword, p.id) for p in (person, lost)]
        assert all(r is not None and r.failed_attempts == 0 for r in rows)


def test_five_wrong_proofs_lock_registration_and_login_for_the_lockout_period(
    world: World, client: TestClient
) -> None:
    person, card_number = cardholder(world)
    ok(register(client, person, card_number), 201)
    session = ok(self_login(client, person), 201)["token"]
    for _ in range(4):
        assert register(client, person, card_number, pin="111999").json()["code"] == (
            "not_verified"
        )
    fifth = register(client, person, card_number, pin="111999")
    assert (fifth.status_code, fifth.json()["code"]) == (423, "login_locked")
    unlocks = datetime.fromisoformat(fifth.json()["unlocks_at"])
    assert unlocks == world.rt.now() + timedelta(minutes=15)
    # Even the right proof, and the login, wait for the lock to run out.
    right = register(client, person, card_number, password="another secret 2")
    assert (right.status_code, right.json()["code"]) == (423, "login_locked")
    assert self_login(client, person).status_code == 423
    ok(client.get("/me", headers=bearer(session)))  # a refused attempt ends nothing
    world.clock.advance(timedelta(minutes=15))
    ok(self_login(client, person), 201)  # the old password: the lock changed nothing


def test_registering_again_does_not_lift_a_lock_and_then_ends_the_sessions(
    world: World, client: TestClient
) -> None:
    person, card_number = cardholder(world)
    ok(register(client, person, card_number), 201)
    session = ok(self_login(client, person), 201)["token"]
    for _ in range(5):
        self_login(client, person, "nope nope nope")
    again = register(client, person, card_number, password="another secret 2")
    assert (again.status_code, again.json()["code"]) == (423, "login_locked")
    world.clock.advance(timedelta(minutes=15))
    assert self_login(client, person, "another secret 2").status_code == 401  # not set
    ok(client.get("/me", headers=bearer(session)))
    ok(register(client, person, card_number, password="another secret 2"), 201)
    ended = client.get("/me", headers=bearer(session))
    assert (ended.status_code, ended.json()["code"]) == (401, "session_ended")
    assert self_login(client, person).status_code == 401
    ok(self_login(client, person, "another secret 2"), 201)


def test_a_person_who_only_tried_to_register_logs_in_like_an_unknown_one(
    world: World, client: TestClient, argon2_checks: list[str]
) -> None:
    from sscard.access.auth_model import NO_PASSWORD_HASH
    from sscard.access.tables import Login

    person, card_number = cardholder(world)
    for _ in range(5):  # wrong proofs: a login row without a password, locked
        register(client, person, card_number, pin="111999")
    with world.rt.uow() as uow:
        row = uow.session.scalar(select(Login).where(Login.person_id == person.id))
        assert row is not None
        assert (row.password_hash, row.locked_until is not None) == (NO_PASSWORD_HASH, True)
    stranger = world.person()
    argon2_checks.clear()
    tried = self_login(client, person, "nope nope nope")
    assert len(argon2_checks) == 1
    unknown = self_login(client, stranger, "nope nope nope")
    assert len(argon2_checks) == 2
    assert all(h.startswith("$argon2id$") for h in argon2_checks)
    assert (tried.status_code, tried.json()) == (unknown.status_code, unknown.json())
    assert tried.json()["code"] == "login_failed"
    # Once the lock runs out, the right proof registers, and the login works.
    world.clock.advance(timedelta(minutes=15))
    ok(register(client, person, card_number), 201)
    ok(self_login(client, person), 201)


def test_registration_with_another_persons_card_is_refused(
    world: World, client: TestClient
) -> None:
    _, card_number = cardholder(world)
    stranger = world.person()
    refused = client.post(
        "/self/registrations",
        json={
            "id_number": stranger.id_number,
            "card_number": card_number,
            "medical_password": "482913",
            "password": "my own secret 1",
        },
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "not_verified")


def test_cardholder_unknown_and_wrong_password_answers_are_identical_and_lock(
    world: World, client: TestClient
) -> None:
    person, card_number = cardholder(world)
    ok(
        client.post(
            "/self/registrations",
            json={
                "id_number": person.id_number,
                "card_number": card_number,
                "medical_password": "482913",
                "password": "my own secret 1",
            },
        ),
        201,
    )
    stranger = world.person()
    wrong = client.post(
        "/self/sessions", json={"id_number": person.id_number, "password": "nope nope nope"}
    )
    unknown = client.post(
        "/self/sessions", json={"id_number": stranger.id_number, "password": "nope nope nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    for _ in range(4):
        client.post(
            "/self/sessions", json={"id_number": person.id_number, "password": "nope nope nope"}
        )
    locked = client.post(
        "/self/sessions", json={"id_number": person.id_number, "password": "my own secret 1"}
    )
    assert (locked.status_code, locked.json()["code"]) == (423, "login_locked")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/auth/sessions", {}),
        ("post", "/auth/sessions", {"org_code": "X", "login": "a", "password": "x", "extra": 1}),
        ("post", "/auth/sessions", {"org_code": "X", "login": "bad name!", "password": "x"}),
        ("post", "/auth/sessions", "not json"),
        ("post", "/self/sessions", {"id_number": "123", "password": "x"}),
        ("post", "/self/registrations", {"id_number": "123"}),
        ("post", "/auth/totp/confirmation", {"code": 5}),
        ("post", "/staff", {"name": "A"}),
        ("post", "/staff", {"name": "A", "login": "a b", "password": PASSWORD}),
        ("post", "/staff", {"name": "A", "login": "ab", "password": PASSWORD, "role": "root"}),
        ("post", "/staff", {"name": "A", "login": "ab", "password": PASSWORD, "org_code": "NO"}),
        ("post", "/staff/999999/deactivation", None),
        ("post", "/staff/abc/unlock", None),
        ("post", "/staff/999999/password-reset", {"password": PASSWORD}),
        ("post", "/staff/1/password-reset", {}),
        ("post", "/credentials", {"system_name": ""}),
        ("post", "/credentials", {"system_name": "X", "role": "administrator"}),
        ("post", "/credentials", {"system_name": "X", "expires_in_days": 0}),
        ("post", "/credentials/999999/rotations", {"grace_hours": 1}),
        ("post", "/credentials/1/rotations", {"grace_hours": -1}),
        ("post", "/credentials/999999/revocation", None),
        ("get", "/credentials?after=garbage", None),
        ("get", "/credentials?limit=0", None),
        ("get", "/staff?org_code=NOPE", None),
        ("get", "/staff?after=garbage", None),
    ],
)
def test_bad_input_at_every_login_endpoint_is_a_clear_4xx(
    world: World, client: TestClient, method: str, path: str, body: Any
) -> None:
    admin = admin_session(world, client)
    kwargs: dict[str, Any] = {"headers": bearer(admin)}
    if isinstance(body, str):
        kwargs["content"] = body
        kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    response = client.request(method.upper(), path, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"]
    assert response.headers["content-type"].startswith("application/problem+json")


def test_login_endpoints_need_no_bearer_but_the_rest_do(client: TestClient) -> None:
    assert client.post("/auth/totp").json()["code"] == "unauthenticated"
    assert client.get("/credentials").status_code == 401
    assert client.delete("/auth/sessions/current").status_code == 401
    garbage = client.get("/me", headers=bearer("ses_not-a-session"))
    assert (garbage.status_code, garbage.json()["code"]) == (401, "unauthenticated")


def test_logging_out_with_a_personal_token_is_refused(world: World, client: TestClient) -> None:
    token = world.token(OrgKind.CENTER)
    refused = client.delete("/auth/sessions/current", headers=bearer(token))
    assert (refused.status_code, refused.json()["reason"]) == (409, "not_a_session")


def test_every_login_administration_act_is_audited_without_secrets(
    world: World, client: TestClient
) -> None:
    from sscard.audit.tables import AuditRecord

    admin = admin_session(world, client)
    staff, _, org = member(world)
    login(client, org, "li.lei", "wrong password!")
    login(client, org, "nobody.here", "wrong password!")
    ok(client.post(f"/staff/{staff.id}/unlock", headers=bearer(admin)))
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "HR"}), 201)
    ok(client.post(f"/credentials/{made['id']}/rotations", headers=bearer(admin)))
    ok(client.post(f"/staff/{staff.id}/deactivation", headers=bearer(admin)))
    with world.rt.uow() as uow:
        rows = list(uow.session.scalars(select(AuditRecord).order_by(AuditRecord.id)))
    actions = [r.action for r in rows]
    for action in (
        "staff.created",
        "staff.login_set",
        "auth.session_opened",
        "auth.login_failed",
        "staff.unlocked",
        "credential.created",
        "credential.rotated",
        "staff.deactivated",
    ):
        assert action in actions, action
    unknown = [r for r in rows if r.action == "auth.login_failed" and r.subject_id is None]
    assert unknown[0].detail["reason"] == "unknown"
    assert unknown[0].source == "testclient"
    text = str([(r.action, r.detail) for r in rows])
    assert "wrong password!" not in text
    assert PASSWORD not in text
    assert made["bearer"].split(".", 1)[1] not in text


def test_deactivating_a_partner_systems_account_revokes_its_credential(
    world: World, client: TestClient
) -> None:
    admin = admin_session(world, client)
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "HR"}), 201)
    ok(client.post(f"/staff/{made['staff_id']}/deactivation", headers=bearer(admin)))
    refused = client.get("/me", headers=bearer(made["bearer"]))
    assert (refused.status_code, refused.json()["code"]) == (401, "credential_revoked")
    listed = ok(client.get("/credentials", headers=bearer(admin)))
    assert listed["items"][0]["revoked_at"] is not None


def test_a_partner_system_uses_idempotency_keys_as_a_person_would(
    world: World, client: TestClient
) -> None:
    card = world.card(CardState.ACTIVE)
    admin = admin_session(world, client, OrgKind.BANK)  # the ICBC host's administrator
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "Host"}), 201)
    headers = {**bearer(made["bearer"]), "Idempotency-Key": "k-1"}
    body = {"kind": "oral", "channel": "bank_phone"}
    first = ok(client.post(f"/cards/{card.id}/loss-reports", headers=headers, json=body))
    again = client.post(f"/cards/{card.id}/loss-reports", headers=headers, json=body)
    assert again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first


def test_the_sweeper_prunes_sessions_a_day_after_their_lifetime(
    world: World, client: TestClient
) -> None:
    from sqlalchemy import func

    from sscard.jobs.sweeper import sweep

    _, _, org = member(world)
    session_of(client, org)
    client.delete("/auth/sessions/current", headers=bearer(session_of(client, org)))

    def sessions() -> int:
        with world.rt.uow() as uow:
            return int(uow.session.scalar(select(func.count()).select_from(AuthSession)) or 0)

    assert sessions() == 2  # one open, one logged out
    world.clock.advance(timedelta(hours=12 + 23))
    assert sweep(world.rt).counts["sessions_pruned"] == 0
    world.clock.advance(timedelta(hours=1, seconds=1))
    assert sweep(world.rt).counts["sessions_pruned"] == 2
    assert sessions() == 0
