"""Logging in: passwords, TOTP, lockout, sessions, and resolving a bearer value to an actor.

Login passwords are argon2id (argon2-cffi); session tokens and partner secrets are
random (``secrets``) and stored as SHA-256 only; TOTP secrets are sealed with AES-GCM
under the ``auth`` key. Wrong passwords and codes are counted with one guarded
UPDATE each, so parallel attempts all count and none can lift a lock another set.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, case, literal, null, or_, select, update
from sqlalchemy.orm import Session

from sscard.access.auth_model import (
    FAILED,
    SESSION_PREFIX,
    TOUCH_EVERY,
    BearerKind,
    CredentialExpired,
    CredentialRevoked,
    LoginFailed,
    SessionEnded,
    SessionTimes,
    StaffKind,
    TotpRequired,
    check_session,
    classify_bearer,
    clean_login_name,
    due_for_touch,
    has_usable_password,
    is_locked,
    locked_error,
    lockout_until,
    mask_name,
)
from sscard.access.model import SYSTEM, Actor
from sscard.access.tables import ApiCredential, AuthSession, Login, Staff
from sscard.access.totp import open_secret, totp_step
from sscard.audit.service import record
from sscard.core.errors import Conflict, DomainError, Unauthenticated
from sscard.db.base import UTCDateTime, table
from sscard.db.engine import UnitOfWork
from sscard.db.statements import Prepared
from sscard.register.model import OrgKind
from sscard.register.service import hash_token
from sscard.register.tables import Organization, Person
from sscard.runtime import Runtime

# Like the card passwords: ~20 ms on one core, 19 MiB (OWASP's argon2id minimum).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify_password(stored: str, password: str) -> bool:
    """One argon2id verification, also for a row with no password yet (which never matches)."""
    if not has_usable_password(stored):
        _verify_password(_dummy_hash(), password)
        return False
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def spend_equal_work(password: str) -> None:
    """What an unknown login costs: one argon2id verification, like a known one."""
    _verify_password(_dummy_hash(), password)


# ---------------------------------------------------------------- logging in


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    session_id: int
    expires_at: datetime
    idle_minutes: int
    actor: Actor


def staff_actor(staff: Staff, org: Organization, source: str) -> Actor:
    return Actor(
        staff_id=staff.id,
        org_id=org.id,
        org_kind=OrgKind(org.kind),
        org_code=org.code,
        bank_code=org.bank_code,
        name=staff.name,
        role=staff.role,
        source=source,
    )


def cardholder_actor(person: Person, source: str) -> Actor:
    return Actor(
        staff_id=None,
        org_id=None,
        org_kind=OrgKind.CARDHOLDER,
        org_code="SELF",
        name=mask_name(person.name),
        person_id=person.id,
        source=source,
    )


def anonymous(source: str) -> Actor:
    """Who an attempt with an unknown login is audited as."""
    return replace(SYSTEM, org_code="ANONYMOUS", name="anonymous", source=source)


def login_staff(
    rt: Runtime, *, org_code: str, login: str, password: str, totp: str | None, source: str
) -> NewSession:
    """Log a staff member in with their password (and TOTP code once enrolled)."""
    name = clean_login_name(login)
    with rt.uow() as uow:
        row = uow.session.execute(
            select(Login, Staff, Organization)
            .join(Staff, Staff.id == Login.staff_id)
            .join(Organization, Organization.id == Staff.org_id)
            .where(Organization.code == (org_code or "").strip(), Staff.login == name)
        ).first()
    if row is None or not row[1].active:
        raise unknown_login(
            rt, password=password, source=source, detail={"org_code": org_code[:32]}
        )
    found, staff, org = row
    return attempt(
        rt,
        login=found,
        actor=staff_actor(staff, org, source),
        password=password,
        totp=totp,
        subject=("staff", staff.id),
    )


def unknown_login(
    rt: Runtime, *, password: str, source: str, detail: dict[str, Any]
) -> LoginFailed:
    """Answer an unknown login exactly like a wrong password, after the same work."""
    spend_equal_work(password)
    with rt.uow() as uow:
        record(
            uow.session,
            actor=anonymous(source),
            at=rt.now(),
            action="auth.login_failed",
            subject_type="login",
            subject_id=None,
            detail={**detail, "reason": "unknown"},
        )
        uow.commit()
    return LoginFailed(FAILED)


def attempt(
    rt: Runtime,
    *,
    login: Login,
    actor: Actor,
    password: str,
    totp: str | None,
    subject: tuple[str, int],
) -> NewSession:
    """Check a password (and code) for a known login; open a session or count a failure."""
    now = rt.now()
    if is_locked(login.locked_until, now):
        assert login.locked_until is not None
        spend_equal_work(password)  # a locked login times like a wrong password
        raise locked_error(login.locked_until)
    ok = _verify_password(login.password_hash, password)
    step: int | None = None
    if ok and login.totp_confirmed_at is not None and login.totp_secret:
        if not (totp or "").strip():
            raise TotpRequired(
                "this login needs the code from its authenticator app: send it as 'totp'",
                field="totp",
            )
        secret = open_secret(login.totp_secret, login_id=login.id)
        step = totp_step(secret, totp or "", now, login.totp_last_step)
        ok = step is not None
    if not ok:
        raise count_failure(rt, login_id=login.id, actor=actor, subject=subject)
    values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None, "last_login_at": now}
    guard = [Login.id == login.id, or_(Login.locked_until.is_(None), Login.locked_until <= now)]
    if step is not None:
        values["totp_last_step"] = step
        guard.append(or_(Login.totp_last_step.is_(None), Login.totp_last_step < step))
    if _HASHER.check_needs_rehash(login.password_hash):
        values["password_hash"] = hash_password(password)
    policy = rt.policy.logins
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    with rt.uow() as uow:
        s = uow.session
        done = s.execute(
            update(Login)
            .where(*guard)
            .values(**values)
            .returning(Login.id)
            .execution_options(synchronize_session=False)
        ).first()
        if done is not None:  # else: locked, or the same code used at the same moment
            session = AuthSession(
                token_hash=hash_token(token),
                login_id=login.id,
                staff_id=login.staff_id,
                person_id=login.person_id,
                source=actor.source[:64],
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=policy.session_absolute_hours),
            )
            s.add(session)
            s.flush()
            record(
                s,
                actor=actor,
                at=now,
                action="auth.session_opened",
                subject_type=subject[0],
                subject_id=subject[1],
                person_id=login.person_id,
                detail={"session_id": session.id, "totp": step is not None},
            )
            uow.commit()
            return NewSession(
                token=token,
                session_id=session.id,
                expires_at=session.expires_at,
                idle_minutes=policy.session_idle_minutes,
                actor=actor,
            )
    raise count_failure(rt, login_id=login.id, actor=actor, subject=subject)


def count_failure(
    rt: Runtime,
    *,
    login_id: int,
    actor: Actor,
    subject: tuple[str, int],
    action: str = "auth.login_failed",
) -> DomainError:
    """Count one wrong password or code (guarded UPDATE, own transaction): the refusal.

    ``action`` is what a failure that does not lock is audited as (self-service
    registration counts its wrong proofs here too, as ``self.registration_failed``).
    """
    policy = rt.policy.logins
    now = rt.now()
    until = literal(lockout_until(policy, now), UTCDateTime())
    # A lock that has run out starts the count again.
    counted = case((Login.locked_until.is_(None), Login.failed_attempts + 1), else_=1)
    with rt.uow() as uow:
        s = uow.session
        got = s.execute(
            update(Login)
            .where(
                Login.id == login_id,
                or_(Login.locked_until.is_(None), Login.locked_until <= now),
            )
            .values(
                failed_attempts=counted,
                locked_until=case((counted >= policy.max_failed_attempts, until), else_=null()),
            )
            .returning(Login.failed_attempts, Login.locked_until)
            .execution_options(synchronize_session=False)
        ).first()
        if got is None:  # another attempt locked it a moment ago
            locked = s.scalar(select(Login.locked_until).where(Login.id == login_id))
            return locked_error(locked or lockout_until(policy, now))
        failed, locked_until = got
        record(
            s,
            actor=actor,
            at=now,
            action="auth.locked" if locked_until else action,
            subject_type=subject[0],
            subject_id=subject[1],
            person_id=actor.person_id,
            detail={"failed_attempts": failed},
        )
        uow.commit()
    if locked_until is not None:
        return locked_error(locked_until)
    return LoginFailed(FAILED)


def end_session(uow: UnitOfWork, rt: Runtime, *, actor: Actor, bearer: str) -> None:
    """Log out: end the session this bearer value opened."""
    kind, _, _ = classify_bearer(bearer)
    if kind is not BearerKind.SESSION:
        raise Conflict(
            "this request is not authenticated by a session: a personal token is revoked by "
            "an administrator, a partner credential through /credentials",
            reason="not_a_session",
        )
    sid = uow.session.scalar(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(bearer), AuthSession.ended_at.is_(None))
        .values(ended_at=rt.now(), end_reason="logout")
        .returning(AuthSession.id)
        .execution_options(synchronize_session=False)
    )
    if sid is None:
        raise SessionEnded("this session was already ended")
    record(
        uow.session,
        actor=actor,
        at=rt.now(),
        action="auth.session_ended",
        subject_type="session",
        subject_id=sid,
        person_id=actor.person_id,
    )
    uow.commit()


def end_sessions(s: Session, *, login_id: int, now: datetime, reason: str) -> int:
    """End every open session of a login (inside the caller's transaction)."""
    result = s.execute(
        update(AuthSession)
        .where(AuthSession.login_id == login_id, AuthSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- bearer values


@dataclass(frozen=True, slots=True)
class Authenticated:
    actor: Actor
    via: BearerKind
    principal: str  # person, service or cardholder


UNKNOWN = "the bearer token is unknown or revoked"
# What a secret is compared with when there is none to compare (never a SHA-256 hex).
_NO_SECRET = "-" * 64


def authenticate(rt: Runtime, *, bearer: str, source: str) -> Authenticated:
    """The actor a bearer value stands for, in a unit of work of its own."""
    with rt.uow() as uow:
        found = authenticate_in(uow.session, rt, bearer=bearer, source=source)
        uow.commit()
    return found


def authenticate_in(s: Session, rt: Runtime, *, bearer: str, source: str) -> Authenticated:
    """The actor a bearer value stands for: a session, a partner credential or a token,
    looked up in the request's own transaction (one indexed lookup, and a guarded
    ``last used`` UPDATE at most once a minute), so that a revocation, a deactivation or
    an expiry takes effect at the very next request."""
    kind, key_id, secret = classify_bearer(bearer.strip())
    now = rt.now()
    if kind is BearerKind.SESSION:
        return _by_session(s, rt, secret, now, source)
    if kind is BearerKind.CREDENTIAL:
        return _by_credential(s, key_id, secret, now, source)
    return _by_token(s, secret, now, source)


def _touch(s: Session, column: Any, id_column: Any, row_id: int, now: datetime) -> None:
    """Record use at most once a minute: a guarded UPDATE, no write otherwise."""
    s.connection().execute(
        update(column.table)
        .where(id_column == row_id, or_(column.is_(None), column <= now - TOUCH_EVERY))
        .values({column.key: now})
    )


# What a bearer lookup reads: plain columns of the tables (no ORM entities), one row.
_STAFF = table(Staff).c
_ORG = table(Organization).c
_SESSION = table(AuthSession).c
_CREDENTIAL = table(ApiCredential).c
_PERSON = table(Person).c
_STAFF_COLUMNS = (
    _STAFF.id.label("staff_id"),
    _STAFF.name.label("staff_name"),
    _STAFF.role,
    _STAFF.kind.label("staff_kind"),
    _STAFF.active,
    _ORG.id.label("org_id"),
    _ORG.kind.label("org_kind"),
    _ORG.code.label("org_code"),
    _ORG.bank_code,
)


def _actor_of(row: Any, source: str) -> Actor:
    return Actor(
        staff_id=row.staff_id,
        org_id=row.org_id,
        org_kind=OrgKind(row.org_kind),
        org_code=row.org_code,
        bank_code=row.bank_code,
        name=row.staff_name,
        role=row.role,
        source=source,
    )


# The three lookups, built once (their compiled form is cached; only values change).
_SESSION_LOOKUP = Prepared(
    select(
        _SESSION.id.label("session_id"),
        _SESSION.created_at,
        _SESSION.last_seen_at,
        _SESSION.expires_at,
        _SESSION.ended_at,
        _SESSION.person_id,
        _PERSON.name.label("person_name"),
        *_STAFF_COLUMNS,
    )
    .select_from(
        table(AuthSession)
        .outerjoin(table(Staff), _STAFF.id == _SESSION.staff_id)
        .outerjoin(table(Organization), _ORG.id == _STAFF.org_id)
        .outerjoin(table(Person), _PERSON.id == _SESSION.person_id)
    )
    .where(_SESSION.token_hash == bindparam("token_hash"))
)
_CREDENTIAL_LOOKUP = Prepared(
    select(
        _CREDENTIAL.id.label("credential_id"),
        _CREDENTIAL.key_id,
        _CREDENTIAL.secret_hash,
        _CREDENTIAL.previous_secret_hash,
        _CREDENTIAL.previous_valid_until,
        _CREDENTIAL.revoked_at,
        _CREDENTIAL.expires_at,
        _CREDENTIAL.last_used_at,
        *_STAFF_COLUMNS,
    )
    .select_from(
        table(ApiCredential)
        .join(table(Staff), _STAFF.id == _CREDENTIAL.staff_id)
        .join(table(Organization), _ORG.id == _STAFF.org_id)
    )
    .where(_CREDENTIAL.key_id == bindparam("key_id"))
)
_TOKEN_LOOKUP = Prepared(
    select(_STAFF.token_last_used_at, *_STAFF_COLUMNS)
    .select_from(table(Staff).join(table(Organization), _ORG.id == _STAFF.org_id))
    .where(_STAFF.token_hash == bindparam("token_hash"))
)


def _by_session(s: Session, rt: Runtime, token: str, now: datetime, source: str) -> Authenticated:
    row = _SESSION_LOOKUP.first(s, {"token_hash": hash_token(token)})
    if row is None:
        raise Unauthenticated(UNKNOWN)
    times = SessionTimes(row.created_at, row.last_seen_at, row.expires_at, row.ended_at)
    check_session(times, rt.policy.logins, now)
    if due_for_touch(row.last_seen_at, now):
        _touch(s, _SESSION.last_seen_at, _SESSION.id, row.session_id, now)
    if row.person_id is not None:
        actor = Actor(
            staff_id=None,
            org_id=None,
            org_kind=OrgKind.CARDHOLDER,
            org_code="SELF",
            name=mask_name(row.person_name),
            person_id=row.person_id,
            source=source,
        )
        return Authenticated(actor, BearerKind.SESSION, "cardholder")
    if row.staff_id is None or row.org_id is None or not row.active:
        raise SessionEnded("this staff member was deactivated")
    return Authenticated(_actor_of(row, source), BearerKind.SESSION, row.staff_kind)


def _by_credential(
    s: Session, key_id: str, secret: str, now: datetime, source: str
) -> Authenticated:
    """A partner credential: the secret is compared first, so only its holder learns
    whether the credential was revoked or has expired; a wrong secret of a known key id
    is answered exactly like an unknown token."""
    given = hash_token(secret)
    row = _CREDENTIAL_LOOKUP.first(s, {"key_id": key_id})
    # Both comparisons always run, in constant time, and against a stand-in for an
    # unknown key id or a missing previous secret.
    current = row.secret_hash if row is not None else _NO_SECRET
    previous = row.previous_secret_hash if row is not None else None
    is_current = hmac.compare_digest(given, current)
    is_previous = hmac.compare_digest(given, previous or _NO_SECRET) and previous is not None
    if row is None or not (is_current or is_previous):
        raise Unauthenticated(UNKNOWN)
    if row.revoked_at is not None or not row.active:
        raise CredentialRevoked(f"credential {row.key_id} was revoked")
    if row.expires_at is not None and now >= row.expires_at:
        raise CredentialExpired(f"credential {row.key_id} expired at {row.expires_at.isoformat()}")
    if not is_current:
        until = row.previous_valid_until
        if until is None or now >= until:
            raise CredentialExpired(
                f"this secret of credential {row.key_id} was rotated out"
                + (f" at {until.isoformat()}" if until else "")
                + ": use the new secret",
                reason="rotated",
            )
    if due_for_touch(row.last_used_at, now):
        _touch(s, _CREDENTIAL.last_used_at, _CREDENTIAL.id, row.credential_id, now)
    return Authenticated(_actor_of(row, source), BearerKind.CREDENTIAL, StaffKind.SERVICE.value)


def _by_token(s: Session, token: str, now: datetime, source: str) -> Authenticated:
    row = _TOKEN_LOOKUP.first(s, {"token_hash": hash_token(token)})
    if row is None or not row.active:
        raise Unauthenticated(UNKNOWN)
    if due_for_touch(row.token_last_used_at, now):
        _touch(s, _STAFF.token_last_used_at, _STAFF.id, row.staff_id, now)
    return Authenticated(_actor_of(row, source), BearerKind.TOKEN, row.staff_kind)
