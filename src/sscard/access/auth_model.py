"""Pure rules of logging in: login passwords, lockout, session lifetimes, bearer values.

No database and no web framework here: the use cases in ``access.auth``,
``access.staffadmin`` and ``access.credentials`` apply these rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sscard.core.errors import DomainError, InvalidInput, Unauthenticated
from sscard.core.policy import LoginSection

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
LOGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Touch a session, credential or token at most this often (no write per request).
TOUCH_EVERY = timedelta(minutes=1)
# Prefixes of the bearer values this service gives out.
SESSION_PREFIX = "ses_"
CREDENTIAL_PREFIX = "ak_"
# The password hash of a login row that has no password yet (a cardholder whose
# registration attempts are being counted): not an argon2 hash, so it never verifies.
NO_PASSWORD_HASH = "!no-password-yet"  # noqa: S105 - a marker, not a secret


class StaffKind(StrEnum):
    """A person at a counter, or a partner system acting through an API credential."""

    PERSON = "person"
    SERVICE = "service"


class LoginFailed(Unauthenticated):
    code = "login_failed"
    title = "Login failed"


class TotpRequired(Unauthenticated):
    code = "totp_required"
    title = "Authentication code required"


class LoginLocked(DomainError):
    code = "login_locked"
    status = 423
    title = "Login locked"


class SessionExpired(Unauthenticated):
    code = "session_expired"
    title = "Session expired"


class SessionEnded(Unauthenticated):
    code = "session_ended"
    title = "Session ended"


class CredentialRevoked(Unauthenticated):
    code = "credential_revoked"
    title = "Credential revoked"


class CredentialExpired(Unauthenticated):
    code = "credential_expired"
    title = "Credential expired"


FAILED = "the login, password or authentication code is wrong"


def check_login_password(password: str, *, names: tuple[str, ...], field: str = "password") -> str:
    """Refuse a new login password that breaks a rule, naming the rule."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a login password needs at least {MIN_PASSWORD_LENGTH} characters",
            field=field,
            reason="too_short",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a login password has at most {MAX_PASSWORD_LENGTH} characters",
            field=field,
            reason="too_long",
        )
    if password.isdigit():
        raise InvalidInput(
            "a login password must not be only digits", field=field, reason="only_digits"
        )
    folded = password.casefold()
    for name in names:
        parts = [name.strip()] + [p for p in re.split(r"[\s._-]+", name.strip()) if len(p) >= 3]
        if any(p and p.casefold() in folded for p in parts):
            raise InvalidInput(
                "a login password must not contain the holder's name or login",
                field=field,
                reason="contains_name",
            )
    return password


def clean_login_name(login: str, *, field: str = "login") -> str:
    """A staff login name: 2 to 64 lower-case letters, digits, '.', '_' or '-'."""
    value = (login or "").strip().lower()
    if not LOGIN_NAME.fullmatch(value):
        raise InvalidInput(
            "a login name is 2 to 64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return value


def has_usable_password(password_hash: str) -> bool:
    """Whether a login row holds a real password hash (not the no-password marker)."""
    return not password_hash.startswith("!")


def lockout_until(policy: LoginSection, now: datetime) -> datetime:
    """When a login locked at ``now`` opens again."""
    return now + timedelta(minutes=policy.lockout_minutes)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def locked_error(locked_until: datetime) -> LoginLocked:
    return LoginLocked(
        "too many wrong passwords or codes in a row: this login is locked until "
        f"{locked_until.isoformat()}; wait, or ask an administrator to unlock it",
        unlocks_at=locked_until.isoformat(),
    )


@dataclass(frozen=True, slots=True)
class SessionTimes:
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None


def check_session(times: SessionTimes, policy: LoginSection, now: datetime) -> None:
    """Refuse a session that was ended, outlived its lifetime or sat idle too long."""
    if times.ended_at is not None:
        raise SessionEnded("this session was ended (logout, password reset or deactivation)")
    if now >= times.expires_at:
        raise SessionExpired(
            f"this session reached its lifetime of {policy.session_absolute_hours} hours: "
            "log in again",
            reason="absolute",
        )
    if now - times.last_seen_at >= timedelta(minutes=policy.session_idle_minutes):
        raise SessionExpired(
            f"this session was idle for {policy.session_idle_minutes} minutes: log in again",
            reason="idle",
        )


def due_for_touch(last: datetime | None, now: datetime) -> bool:
    """Whether a last-used time is old enough to be written again."""
    return last is None or now - last >= TOUCH_EVERY


class BearerKind(StrEnum):
    SESSION = "session"
    CREDENTIAL = "credential"
    TOKEN = "token"  # noqa: S105 - a kind of bearer value, not a secret


def classify_bearer(value: str) -> tuple[BearerKind, str, str]:
    """Which kind of bearer value this is: (kind, key id or '', secret)."""
    if value.startswith(SESSION_PREFIX):
        return BearerKind.SESSION, "", value
    if value.startswith(CREDENTIAL_PREFIX) and "." in value:
        key_id, _, secret = value.partition(".")
        return BearerKind.CREDENTIAL, key_id, secret
    return BearerKind.TOKEN, "", value


def mask_name(name: str) -> str:
    """A cardholder's name with all but the first character masked (张三 → 张*)."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else "*"
