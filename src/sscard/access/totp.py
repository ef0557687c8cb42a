"""TOTP (RFC 6238) for staff logins: enrolment, confirmation, and one-use codes.

The secret is sealed with AES-GCM under a key derived (HKDF) from the ``auth`` key
and bound to its ``logins`` row; it is shown once, at enrolment.
"""

from __future__ import annotations

import base64
import hmac
import os
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.access.tables import Login, Staff
from sscard.audit.service import record
from sscard.core.errors import Conflict, DomainError, InvalidInput
from sscard.core.keys import load_key
from sscard.db.engine import UnitOfWork
from sscard.runtime import Runtime

AUTH = "auth"  # the key that seals TOTP secrets
ISSUER = "sscard"


# ---------------------------------------------------------------- TOTP secrets


@cache
def _aead() -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sscard totp secret")
    return AESGCM(key.derive(load_key(AUTH)))


def seal_secret(secret: str, *, login_id: int) -> str:
    """Encrypt a TOTP secret, bound to its login row (AES-GCM, random nonce)."""
    nonce = os.urandom(12)
    sealed = _aead().encrypt(nonce, secret.encode(), f"login:{login_id}".encode())
    return base64.b64encode(nonce + sealed).decode()


def open_secret(sealed: str, *, login_id: int) -> str:
    raw = base64.b64decode(sealed)
    try:
        return _aead().decrypt(raw[:12], raw[12:], f"login:{login_id}".encode()).decode()
    except InvalidTag:
        raise DomainError("a stored authentication secret cannot be opened") from None


def totp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to (now, or one step either side), if not used yet."""
    code = (code or "").strip()
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in (0, -1, 1):
        step = current + offset
        if hmac.compare_digest(totp.at(now, counter_offset=offset), code):
            return step if last_step is None or step > last_step else None
    return None


# ---------------------------------------------------------------- TOTP enrolment


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str


def _own_login(s: Session, actor: Actor) -> Login:
    if actor.staff_id is None:
        raise Conflict("only staff members enrol an authenticator", reason="no_login")
    login = s.scalar(
        select(Login)
        .where(Login.staff_id == actor.staff_id)
        .execution_options(populate_existing=True)
    )
    if login is None:
        raise Conflict(
            "this staff member has no password login yet: an administrator gives them one",
            reason="no_login",
        )
    return login


def enrol_totp(uow: UnitOfWork, rt: Runtime, *, actor: Actor) -> TotpEnrolment:
    """Start TOTP enrolment: a new secret, shown once; confirmed with a current code."""
    s = uow.session
    login = _own_login(s, actor)
    if login.totp_confirmed_at is not None:
        raise Conflict(
            "an authenticator is already enabled for this login; an administrator's "
            "password reset with 'clear_totp' removes it",
            reason="totp_enabled",
        )
    secret = pyotp.random_base32()
    login.totp_secret = seal_secret(secret, login_id=login.id)
    login.totp_last_step = None
    staff = s.get(Staff, actor.staff_id)
    assert staff is not None
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=f"{actor.org_code}:{staff.login}", issuer_name=ISSUER
    )
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="auth.totp_enrolled",
        subject_type="staff",
        subject_id=actor.staff_id,
    )
    uow.commit()
    return TotpEnrolment(secret=secret, uri=uri)


def confirm_totp(uow: UnitOfWork, rt: Runtime, *, actor: Actor, code: str) -> None:
    """Enable TOTP once the member shows a current code of the enrolled secret."""
    s = uow.session
    login = _own_login(s, actor)
    if login.totp_confirmed_at is not None:
        raise Conflict("the authenticator is already enabled", reason="totp_enabled")
    if not login.totp_secret:
        raise Conflict("enrol first: POST /auth/totp", reason="totp_not_enrolled")
    secret = open_secret(login.totp_secret, login_id=login.id)
    step = totp_step(secret, code, rt.now(), login.totp_last_step)
    if step is None:
        raise InvalidInput(
            "this is not the authenticator's current code: check the phone's time and "
            "send the six digits shown now",
            field="code",
            reason="wrong_code",
        )
    login.totp_confirmed_at, login.totp_last_step = rt.now(), step
    record(
        s,
        actor=actor,
        at=rt.now(),
        action="auth.totp_enabled",
        subject_type="staff",
        subject_id=actor.staff_id,
    )
    uow.commit()
