"""Logging in and managing logins: sessions, TOTP, cardholders, staff, partner credentials."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from sscard.access import credentials, selfservice, staffadmin
from sscard.access.auth import NewSession, end_session, login_staff
from sscard.access.auth_schemas import (
    CredentialIn,
    CredentialPage,
    CredentialRead,
    CredentialSecretRead,
    PasswordResetIn,
    RotationIn,
    SelfLoginIn,
    SelfRegistrationIn,
    SelfRegistrationRead,
    SessionRead,
    StaffIn,
    StaffLoginIn,
    StaffPage,
    StaffRead,
    TotpCodeIn,
    TotpEnrolmentRead,
    TotpRead,
)
from sscard.access.tables import ApiCredential, Staff
from sscard.access.totp import confirm_totp, enrol_totp
from sscard.api.unit import PublicUow, UnitRoute, Uow, client_address
from sscard.runtime import Runtime

router = APIRouter(route_class=UnitRoute, tags=["logins"])


def _session(new: NewSession) -> SessionRead:
    return SessionRead(
        token=new.token,
        expires_at=new.expires_at,
        idle_timeout_minutes=new.idle_minutes,
        staff_id=new.actor.staff_id,
        person_id=new.actor.person_id,
        organization=new.actor.org_code,
    )


@router.post("/auth/sessions", response_model=SessionRead, status_code=status.HTTP_201_CREATED)
def open_session(body: StaffLoginIn, request: Request, uow: PublicUow) -> SessionRead:
    """Log a staff member in: the session token (shown once) and when it expires."""
    return _session(
        login_staff(
            uow.rt,
            org_code=body.org_code,
            login=body.login,
            password=body.password.get_secret_value(),
            totp=body.totp.get_secret_value() if body.totp else None,
            source=client_address(request),
        )
    )


@router.delete("/auth/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
def close_session(request: Request, uow: Uow) -> Response:
    """Log out: end the session this request carries."""
    bearer = request.headers.get("authorization", "").partition(" ")[2].strip()
    end_session(uow, uow.rt, actor=uow.actor, bearer=bearer)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/totp", response_model=TotpEnrolmentRead, status_code=status.HTTP_201_CREATED)
def start_totp(uow: Uow) -> TotpEnrolmentRead:
    """Enrol an authenticator app: its secret and otpauth:// URI, shown once."""
    enrolment = enrol_totp(uow, uow.rt, actor=uow.actor)
    return TotpEnrolmentRead(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@router.post("/auth/totp/confirmation", response_model=TotpRead)
def finish_totp(body: TotpCodeIn, uow: Uow) -> TotpRead:
    """Enable the authenticator with a current code; from then on login asks for one."""
    confirm_totp(uow, uow.rt, actor=uow.actor, code=body.code.get_secret_value())
    return TotpRead(enabled=True)


# ---------------------------------------------------------------- cardholders


@router.post(
    "/self/registrations", response_model=SelfRegistrationRead, status_code=status.HTTP_201_CREATED
)
def register_self(
    body: SelfRegistrationIn, request: Request, uow: PublicUow
) -> SelfRegistrationRead:
    """A cardholder's self-service login, proven with ID number, card and consumption password.

    Registering again the same way sets a new login password.
    """
    person_id = selfservice.register(
        uow.rt,
        id_number=body.id_number,
        card_number=body.card_number,
        medical_password=body.medical_password.get_secret_value(),
        password=body.password.get_secret_value(),
        source=client_address(request),
    )
    return SelfRegistrationRead(person_id=person_id)


@router.post("/self/sessions", response_model=SessionRead, status_code=status.HTTP_201_CREATED)
def open_self_session(body: SelfLoginIn, request: Request, uow: PublicUow) -> SessionRead:
    """Log a cardholder in to self-service with ID number and login password."""
    return _session(
        selfservice.login(
            uow.rt,
            id_number=body.id_number,
            password=body.password.get_secret_value(),
            source=client_address(request),
        )
    )


# ---------------------------------------------------------------- staff


def _staff_read(rt: Runtime, staff: Staff) -> StaffRead:
    with rt.uow() as uow:
        return StaffRead.of(staff, staffadmin.login_state(uow.session, staff.id))


@router.post("/staff", response_model=StaffRead, status_code=status.HTTP_201_CREATED)
def add_staff(body: StaffIn, uow: Uow) -> StaffRead:
    """An administrator adds a member with a login and an initial password."""
    staff, _ = staffadmin.create_member(
        uow,
        uow.rt,
        actor=uow.actor,
        org_code=body.org_code,
        name=body.name,
        role=body.role,
        login=body.login,
        password=body.password.get_secret_value(),
    )
    return _staff_read(uow.rt, staff)


@router.get("/staff", response_model=StaffPage)
def list_staff(
    uow: Uow,
    org_code: str | None = Query(default=None, max_length=32),
    after: str | None = None,
    limit: int = 50,
) -> StaffPage:
    """An organization's staff and partner systems, with their logins' states."""
    s = uow.session
    page, logins = staffadmin.list_members(
        s, actor=uow.actor, org_code=org_code, after=after, limit=limit
    )
    return StaffPage(items=[StaffRead.of(m, logins.get(m.id)) for m in page.items], next=page.next)


@router.post("/staff/{staff_id}/deactivation", response_model=StaffRead)
def deactivate_staff(staff_id: int, uow: Uow) -> StaffRead:
    """Deactivate a member: their sessions, token and credentials end at once."""
    staff = staffadmin.deactivate(uow, uow.rt, actor=uow.actor, staff_id=staff_id)
    return _staff_read(uow.rt, staff)


@router.post("/staff/{staff_id}/password-reset", response_model=StaffRead)
def reset_staff_password(staff_id: int, body: PasswordResetIn, uow: Uow) -> StaffRead:
    """Set a member's password directly; it unlocks the login and ends their sessions."""
    staff = staffadmin.reset_password(
        uow,
        uow.rt,
        actor=uow.actor,
        staff_id=staff_id,
        password=body.password.get_secret_value(),
        login=body.login,
        clear_totp=body.clear_totp,
    )
    return _staff_read(uow.rt, staff)


@router.post("/staff/{staff_id}/unlock", response_model=StaffRead)
def unlock_staff(staff_id: int, uow: Uow) -> StaffRead:
    """Lift a lockout after repeated wrong passwords or codes."""
    staff = staffadmin.unlock(uow, uow.rt, actor=uow.actor, staff_id=staff_id)
    return _staff_read(uow.rt, staff)


@router.post("/staff/{staff_id}/token-revocation", response_model=StaffRead)
def revoke_staff_token(staff_id: int, uow: Uow) -> StaffRead:
    """Revoke a member's personal access token."""
    staff = staffadmin.revoke_token(uow, uow.rt, actor=uow.actor, staff_id=staff_id)
    return _staff_read(uow.rt, staff)


# ---------------------------------------------------------------- partner credentials


def _with_secret(cred: ApiCredential, bearer: str) -> CredentialSecretRead:
    return CredentialSecretRead(**CredentialRead.of(cred).model_dump(), bearer=bearer)


@router.post(
    "/credentials", response_model=CredentialSecretRead, status_code=status.HTTP_201_CREATED
)
def create_credential(body: CredentialIn, uow: Uow) -> CredentialSecretRead:
    """A partner system's credential: its bearer value '<key_id>.<secret>' is shown once."""
    cred, bearer = credentials.create(
        uow,
        uow.rt,
        actor=uow.actor,
        system_name=body.system_name,
        org_code=body.org_code,
        role=body.role,
        expires_in_days=body.expires_in_days,
    )
    return _with_secret(cred, bearer)


@router.post("/credentials/{credential_id}/rotations", response_model=CredentialSecretRead)
def rotate_credential(
    credential_id: int, uow: Uow, body: RotationIn | None = None
) -> CredentialSecretRead:
    """A new secret; the old one keeps working for the grace period (default: policy)."""
    cred, bearer = credentials.rotate(
        uow,
        uow.rt,
        actor=uow.actor,
        credential_id=credential_id,
        grace_hours=body.grace_hours if body else None,
    )
    return _with_secret(cred, bearer)


@router.post("/credentials/{credential_id}/revocation", response_model=CredentialRead)
def revoke_credential(credential_id: int, uow: Uow) -> CredentialRead:
    """Revoke a credential: refused from the next request on."""
    cred = credentials.revoke(uow, uow.rt, actor=uow.actor, credential_id=credential_id)
    return CredentialRead.of(cred)


@router.get("/credentials", response_model=CredentialPage)
def list_credentials(
    uow: Uow,
    org_code: str | None = Query(default=None, max_length=32),
    after: str | None = None,
    limit: int = 50,
) -> CredentialPage:
    """An organization's credentials (key id and times, never a secret)."""
    s = uow.session
    page = credentials.list_credentials(
        s, actor=uow.actor, org_code=org_code, after=after, limit=limit
    )
    return CredentialPage(items=[CredentialRead.of(c) for c in page.items], next=page.next)
