"""Staff administration: members with logins, password resets, deactivation, unlocking.

Only administrators manage staff: an organization's administrators their own
organization's members, the center's administrators any organization's. Each use
case is one transaction with its audit record. A password reset sets the new
password directly (the administrator hands it over) and ends the member's sessions.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sscard.access.auth import end_sessions, hash_password
from sscard.access.auth_model import StaffKind, check_login_password, clean_login_name
from sscard.access.model import Actor, Role, require
from sscard.access.tables import ApiCredential, Login, Staff
from sscard.audit.service import record
from sscard.core.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound
from sscard.core.pagination import Page
from sscard.db.engine import UnitOfWork, is_postgres
from sscard.db.paging import page_by_id
from sscard.register.model import OrgKind
from sscard.register.service import clean_name, hash_token, org_by_code, org_by_id
from sscard.register.tables import Organization
from sscard.runtime import Runtime


def require_admin(actor: Actor, org_id: int) -> None:
    """Administrators only: of ``org_id`` itself, or of the card management center."""
    if actor.role != Role.ADMINISTRATOR.value:
        raise Forbidden(
            "only an administrator manages staff and credentials", reason="not_administrator"
        )
    if actor.org_kind is not OrgKind.CENTER and actor.org_id != org_id:
        raise Forbidden(
            f"an administrator of {actor.org_code} manages only {actor.org_code}'s staff",
            reason="other_organization",
        )


def target_org(s: Session, actor: Actor, org_code: str | None) -> Organization:
    """The organization named, or the actor's own."""
    if org_code:
        return org_by_code(s, org_code)
    if actor.org_id is None:
        raise InvalidInput("name the organization: org_code", field="org_code")
    return org_by_id(s, actor.org_id)


def clean_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise InvalidInput(
            "role must be " + ", ".join(r.value for r in Role), field="role"
        ) from None


def initial_password() -> str:
    """A one-time initial password for a new member, printed once."""
    return "init-" + secrets.token_urlsafe(12)


def add_login(
    s: Session, rt: Runtime, *, actor: Actor, staff: Staff, login: str, password: str
) -> Login:
    """Give a staff member a login name and password (inside the caller's transaction)."""
    name = clean_login_name(login)
    if staff.kind != StaffKind.PERSON.value:
        raise Conflict("a partner system logs in with its credential", reason="service_account")
    taken = s.scalar(select(Staff.id).where(Staff.org_id == staff.org_id, Staff.login == name))
    if taken is not None:
        raise AlreadyExists(f"the login '{name}' is taken in this organization", field="login")
    check_login_password(password, names=(staff.name, name))
    staff.login = name
    row = Login(
        staff_id=staff.id,
        password_hash=hash_password(password),
        password_set_at=rt.now(),
        failed_attempts=0,
        created_at=rt.now(),
    )
    s.add(row)
    s.flush()
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="staff.login_set",
        subject_type="staff",
        subject_id=staff.id,
        detail={"login": name},
    )
    return row


def create_member(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    org_code: str | None,
    name: str,
    role: str,
    login: str,
    password: str,
    with_token: bool = False,
) -> tuple[Staff, str | None]:
    """Add a staff member with a login (and, for the CLI, a personal token shown once)."""
    require(actor, "staff.manage")
    s = uow.session
    org = target_org(s, actor, org_code)
    require_admin(actor, org.id)
    token = f"ssc_{secrets.token_urlsafe(24)}" if with_token else None
    staff = Staff(
        org_id=org.id,
        name=clean_name(name),
        role=clean_role(role),
        kind=StaffKind.PERSON.value,
        token_hash=hash_token(token) if token else None,
        created_at=rt.now(),
    )
    s.add(staff)
    s.flush()
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="staff.created",
        subject_type="staff",
        subject_id=staff.id,
        detail={"org_id": org.id, "role": staff.role},
    )
    add_login(s, rt, actor=actor, staff=staff, login=login, password=password)
    uow.commit()
    return staff, token


def _member(s: Session, actor: Actor, staff_id: int) -> Staff:
    require(actor, "staff.manage")
    if actor.role != Role.ADMINISTRATOR.value:
        require_admin(actor, -1)
    q = select(Staff).where(Staff.id == staff_id).execution_options(populate_existing=True)
    if is_postgres(s):
        q = q.with_for_update()
    staff = s.scalar(q)
    if staff is None:
        raise NotFound(f"no staff member {staff_id}")
    require_admin(actor, staff.org_id)
    return staff


def _login_of(s: Session, staff: Staff) -> Login | None:
    return s.scalar(
        select(Login).where(Login.staff_id == staff.id).execution_options(populate_existing=True)
    )


def deactivate(uow: UnitOfWork, rt: Runtime, *, actor: Actor, staff_id: int) -> Staff:
    """Deactivate a member: their sessions, token and credentials end at once."""
    s = uow.session
    staff = _member(s, actor, staff_id)
    if staff.id == actor.staff_id:
        raise Conflict("an administrator cannot deactivate themself", reason="self")
    if not staff.active:
        raise Conflict(f"staff member {staff_id} is already deactivated", reason="inactive")
    now = rt.now()
    staff.active, staff.token_hash = False, None
    login = _login_of(s, staff)
    ended = end_sessions(s, login_id=login.id, now=now, reason="deactivated") if login else 0
    revoked = _revoke_credentials(s, staff.id, now)
    record(
        s,
        actor=actor,
        at=now,
        action="staff.deactivated",
        subject_type="staff",
        subject_id=staff.id,
        detail={"sessions_ended": ended, "credentials_revoked": revoked},
    )
    uow.commit()
    return staff


def _revoke_credentials(s: Session, staff_id: int, now: datetime) -> int:
    result = s.execute(
        update(ApiCredential)
        .where(ApiCredential.staff_id == staff_id, ApiCredential.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def reset_password(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    staff_id: int,
    password: str,
    login: str | None = None,
    clear_totp: bool = False,
) -> Staff:
    """Set a member's password directly (unlocking it and ending their sessions).

    A member without a login gets one: ``login`` names it.
    """
    s = uow.session
    staff = _member(s, actor, staff_id)
    if not staff.active:
        raise Conflict(f"staff member {staff_id} is deactivated", reason="inactive")
    row = _login_of(s, staff)
    now = rt.now()
    if row is None:
        if not login:
            raise InvalidInput(
                "this member has no login yet: give one in 'login' with the password",
                field="login",
            )
        add_login(s, rt, actor=actor, staff=staff, login=login, password=password)
        uow.commit()
        return staff
    assert staff.login is not None
    check_login_password(password, names=(staff.name, staff.login))
    row.password_hash, row.password_set_at = hash_password(password), now
    row.failed_attempts, row.locked_until = 0, None
    if clear_totp:
        row.totp_secret, row.totp_confirmed_at, row.totp_last_step = None, None, None
    ended = end_sessions(s, login_id=row.id, now=now, reason="password_reset")
    record(
        s,
        actor=actor,
        at=now,
        action="staff.password_reset",
        subject_type="staff",
        subject_id=staff.id,
        detail={"sessions_ended": ended, "totp_cleared": clear_totp},
    )
    uow.commit()
    return staff


def unlock(uow: UnitOfWork, rt: Runtime, *, actor: Actor, staff_id: int) -> Staff:
    """Lift a lockout and clear the count of wrong attempts."""
    s = uow.session
    staff = _member(s, actor, staff_id)
    row = _login_of(s, staff)
    if row is None:
        raise Conflict(f"staff member {staff_id} has no login to unlock", reason="no_login")
    was = row.failed_attempts
    row.failed_attempts, row.locked_until = 0, None
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="staff.unlocked",
        subject_type="staff",
        subject_id=staff.id,
        detail={"failed_attempts": was},
    )
    uow.commit()
    return staff


def revoke_token(uow: UnitOfWork, rt: Runtime, *, actor: Actor, staff_id: int) -> Staff:
    """Revoke a member's personal access token at once."""
    s = uow.session
    staff = _member(s, actor, staff_id)
    if staff.token_hash is None:
        raise Conflict(f"staff member {staff_id} has no personal token", reason="no_token")
    staff.token_hash = None
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="staff.token_revoked",
        subject_type="staff",
        subject_id=staff.id,
    )
    uow.commit()
    return staff


def login_state(s: Session, staff_id: int) -> Login | None:
    return s.scalar(select(Login).where(Login.staff_id == staff_id))


def list_members(
    s: Session, *, actor: Actor, org_code: str | None, after: str | None, limit: int
) -> tuple[Page[Staff], dict[int, Login]]:
    """An organization's staff by id, with their logins' states (one query per page)."""
    require(actor, "staff.manage")
    org = target_org(s, actor, org_code)
    require_admin(actor, org.id)
    page = page_by_id(
        s, select(Staff).where(Staff.org_id == org.id), Staff.id, after=after, limit=limit
    )
    ids = [m.id for m in page.items]
    logins: list[Login] = (
        list(s.scalars(select(Login).where(Login.staff_id.in_(ids)))) if ids else []
    )
    return page, {row.staff_id: row for row in logins if row.staff_id is not None}
