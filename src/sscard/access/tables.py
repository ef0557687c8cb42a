"""Staff members of organizations, their logins, sessions and partner credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sscard.db.base import Base, BigId


class Staff(Base):
    """A person at an organization, or (``kind`` 'service') a partner system."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), default="operator")
    kind: Mapped[str] = mapped_column(String(10), default="person", server_default="person")
    # The login name, unique within the organization (None: no password login).
    login: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the personal access token; shown once, never stored; None: revoked.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_last_used_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("org_id", "login", name="uq_staff_org_login"),)


class Login(Base):
    """A password login of a staff member or of a cardholder (self-service).

    The password is stored as argon2id only; the TOTP secret is encrypted with the
    ``auth`` key. ``failed_attempts`` counts wrong passwords or codes in a row and is
    only ever changed by guarded UPDATEs, so parallel attempts all count.
    """

    __tablename__ = "logins"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    password_set_at: Mapped[datetime]
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("(staff_id IS NULL) <> (person_id IS NULL)", name="one_holder"),
    )


class AuthSession(Base):
    """A login session; only the SHA-256 of its bearer value is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("logins.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        Index("ix_auth_sessions_login", "login_id", "ended_at"),
        Index("ix_auth_sessions_staff", "staff_id", "ended_at"),
        Index("ix_auth_sessions_expires", "expires_at"),  # the sweeper prunes by it
    )


class ApiCredential(Base):
    """A partner system's credential: a key id and a secret (stored as SHA-256).

    After a rotation the previous secret keeps working until ``previous_valid_until``.
    """

    __tablename__ = "api_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    system_name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_credentials_org", "org_id", "id"),)
