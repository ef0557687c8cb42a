"""API credentials of partner systems (a bank's host, a hospital's information system).

A credential acts as a service account of its organization (a ``staff`` row of kind
``service``), so idempotency keys and the audit trail work as for people. Its bearer
value is ``<key id>.<secret>``; only the secret's SHA-256 is stored and the secret is
shown once. A rotation issues a new secret while the old one keeps working for a
grace period; a revocation is immediate.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.auth_model import CREDENTIAL_PREFIX, StaffKind
from sscard.access.model import Actor, Role, require
from sscard.access.staffadmin import require_admin, target_org
from sscard.access.tables import ApiCredential, Staff
from sscard.audit.service import record
from sscard.core.errors import Conflict, InvalidInput, NotFound
from sscard.core.pagination import Page
from sscard.db.engine import UnitOfWork, is_postgres
from sscard.db.paging import page_by_id
from sscard.register.service import clean_name, hash_token
from sscard.runtime import Runtime

SERVICE_ROLES = (Role.OPERATOR.value, Role.SUPERVISOR.value)
MAX_GRACE_HOURS = 720


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def create(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    system_name: str,
    org_code: str | None = None,
    role: str = Role.OPERATOR.value,
    expires_in_days: int | None = None,
) -> tuple[ApiCredential, str]:
    """Create a partner system's credential; return it and its bearer value (shown once)."""
    require(actor, "credentials.manage")
    s = uow.session
    org = target_org(s, actor, org_code)
    require_admin(actor, org.id)
    if role not in SERVICE_ROLES:
        raise InvalidInput(
            "a partner system's role is operator or supervisor (never administrator)",
            field="role",
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise InvalidInput("expires_in_days must be 1 to 3650", field="expires_in_days")
    name = clean_name(system_name, "system_name")
    now = rt.now()
    staff = Staff(
        org_id=org.id,
        name=name,
        role=role,
        kind=StaffKind.SERVICE.value,
        token_hash=None,
        created_at=now,
    )
    s.add(staff)
    s.flush()
    secret = _new_secret()
    cred = ApiCredential(
        key_id=CREDENTIAL_PREFIX + secrets.token_hex(8),
        staff_id=staff.id,
        org_id=org.id,
        system_name=name,
        secret_hash=hash_token(secret),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    s.add(cred)
    s.flush()
    record(
        s,
        actor=actor,
        at=now,
        action="credential.created",
        subject_type="credential",
        subject_id=cred.id,
        detail={"key_id": cred.key_id, "staff_id": staff.id},
    )
    uow.commit()
    return cred, f"{cred.key_id}.{secret}"


def _load(s: Session, actor: Actor, credential_id: int) -> ApiCredential:
    require(actor, "credentials.manage")
    if actor.role != Role.ADMINISTRATOR.value:
        require_admin(actor, -1)
    q = select(ApiCredential).where(ApiCredential.id == credential_id)
    if is_postgres(s):
        q = q.with_for_update()
    cred = s.scalar(q.execution_options(populate_existing=True))
    if cred is None:
        raise NotFound(f"no credential {credential_id}")
    require_admin(actor, cred.org_id)
    if cred.revoked_at is not None:
        raise Conflict(f"credential {cred.key_id} is revoked", reason="revoked")
    return cred


def rotate(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    credential_id: int,
    grace_hours: int | None = None,
) -> tuple[ApiCredential, str]:
    """A new secret; the current one keeps working for ``grace_hours`` (policy default)."""
    hours = rt.policy.logins.credential_grace_hours if grace_hours is None else grace_hours
    if not 0 <= hours <= MAX_GRACE_HOURS:
        raise InvalidInput(f"grace_hours must be 0 to {MAX_GRACE_HOURS}", field="grace_hours")
    s = uow.session
    cred = _load(s, actor, credential_id)
    now = rt.now()
    secret = _new_secret()
    cred.previous_secret_hash = cred.secret_hash if hours else None
    cred.previous_valid_until = now + timedelta(hours=hours) if hours else None
    cred.secret_hash, cred.rotated_at = hash_token(secret), now
    record(
        s,
        actor=actor,
        at=now,
        action="credential.rotated",
        subject_type="credential",
        subject_id=cred.id,
        detail={"key_id": cred.key_id, "grace_hours": hours},
    )
    uow.commit()
    return cred, f"{cred.key_id}.{secret}"


def revoke(uow: UnitOfWork, rt: Runtime, *, actor: Actor, credential_id: int) -> ApiCredential:
    """Revoke a credential at once (both its secrets)."""
    s = uow.session
    cred = _load(s, actor, credential_id)
    cred.revoked_at = rt.now()
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="credential.revoked",
        subject_type="credential",
        subject_id=cred.id,
        detail={"key_id": cred.key_id},
    )
    uow.commit()
    return cred


def list_credentials(
    s: Session, *, actor: Actor, org_code: str | None, after: str | None, limit: int
) -> Page[ApiCredential]:
    """An organization's credentials by id, without any secret."""
    require(actor, "credentials.manage")
    org = target_org(s, actor, org_code)
    require_admin(actor, org.id)
    query = select(ApiCredential).where(ApiCredential.org_id == org.id)
    return page_by_id(s, query, ApiCredential.id, after=after, limit=limit)
