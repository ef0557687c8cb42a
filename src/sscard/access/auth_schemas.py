"""API shapes of logins, sessions, staff administration and partner credentials.

Passwords and codes come in as ``SecretStr``; no response carries a password, a
hash or a stored secret. Secrets and session tokens are answered once, when made.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from sscard.access.tables import ApiCredential, Login, Staff


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaffLoginIn(_In):
    org_code: str = Field(min_length=1, max_length=32)
    login: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(max_length=200)
    totp: SecretStr | None = Field(default=None, max_length=12)


class SelfLoginIn(_In):
    id_number: str = Field(min_length=1, max_length=18)
    password: SecretStr = Field(max_length=200)


class SelfRegistrationIn(_In):
    id_number: str = Field(min_length=1, max_length=18)
    card_number: str = Field(min_length=1, max_length=20)
    medical_password: SecretStr = Field(max_length=6)
    password: SecretStr = Field(max_length=200)


class SelfRegistrationRead(BaseModel):
    person_id: int
    registered: bool = True


class SessionRead(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_at: datetime
    idle_timeout_minutes: int
    staff_id: int | None
    person_id: int | None
    organization: str


class TotpEnrolmentRead(BaseModel):
    secret: str
    otpauth_uri: str
    confirm_with: str = 'POST /auth/totp/confirmation {"code": "<six digits>"}'


class TotpCodeIn(_In):
    code: SecretStr = Field(max_length=12)


class TotpRead(BaseModel):
    enabled: bool


class StaffIn(_In):
    name: str = Field(min_length=1, max_length=100)
    login: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(max_length=200)
    role: str = "operator"
    org_code: str | None = Field(default=None, max_length=32)


class PasswordResetIn(_In):
    password: SecretStr = Field(max_length=200)
    login: str | None = Field(default=None, max_length=64)
    clear_totp: bool = False


class StaffRead(BaseModel):
    id: int
    org_id: int
    name: str
    role: str
    kind: str
    login: str | None
    active: bool
    has_token: bool
    totp_enabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, staff: Staff, login: Login | None) -> StaffRead:
        return cls(
            id=staff.id,
            org_id=staff.org_id,
            name=staff.name,
            role=staff.role,
            kind=staff.kind,
            login=staff.login,
            active=staff.active,
            has_token=staff.token_hash is not None,
            totp_enabled=bool(login and login.totp_confirmed_at),
            failed_attempts=login.failed_attempts if login else 0,
            locked_until=login.locked_until if login else None,
            created_at=staff.created_at,
        )


class StaffPage(BaseModel):
    items: list[StaffRead]
    next: str | None


class CredentialIn(_In):
    system_name: str = Field(min_length=1, max_length=100)
    role: str = "operator"
    org_code: str | None = Field(default=None, max_length=32)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class RotationIn(_In):
    grace_hours: int | None = Field(default=None, ge=0, le=720)


class CredentialRead(BaseModel):
    id: int
    key_id: str
    system_name: str
    org_id: int
    staff_id: int
    created_at: datetime
    rotated_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    previous_secret_valid_until: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, cred: ApiCredential) -> CredentialRead:
        return cls(
            id=cred.id,
            key_id=cred.key_id,
            system_name=cred.system_name,
            org_id=cred.org_id,
            staff_id=cred.staff_id,
            created_at=cred.created_at,
            rotated_at=cred.rotated_at,
            last_used_at=cred.last_used_at,
            expires_at=cred.expires_at,
            previous_secret_valid_until=cred.previous_valid_until,
            revoked_at=cred.revoked_at,
        )


class CredentialSecretRead(CredentialRead):
    """A credential with its bearer value, answered once at creation or rotation."""

    bearer: str


class CredentialPage(BaseModel):
    items: list[CredentialRead]
    next: str | None
