"""API shapes of the bank side. Passwords come in only; card and ID numbers go out masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from sscard.bank.model import AccountState, allowed_actions
from sscard.bank.service import PasswordCheck
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.core.ids import mask_bank_card, mask_id_number

Password = SecretStr  # hidden in repr, logs and dumps; read with get_secret_value()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CardIn(_In):
    bank_card_number: str = Field(min_length=1, max_length=25)


class FinancialActivationIn(CardIn):
    """V-1, V-2: ID and card at the outlet, and the new financial password."""

    id_number: str = Field(min_length=1, max_length=40)
    financial_password: Password = Field(min_length=1, max_length=32)


class PasswordCheckIn(CardIn):
    financial_password: Password = Field(min_length=1, max_length=32)


class PasswordResetIn(CardIn):
    """P-2: ID and card at the outlet, and the new password."""

    id_number: str = Field(min_length=1, max_length=40)
    new_password: Password = Field(min_length=1, max_length=32)


class PasswordChangeIn(CardIn):
    old_password: Password = Field(min_length=1, max_length=32)
    new_password: Password = Field(min_length=1, max_length=32)


class AccountRead(BaseModel):
    id: int
    bank_code: str
    bank_card_number: str  # masked
    holder_id_number: str  # masked
    card_id: int
    state: str
    allowed_actions: list[str]
    password_set: bool
    password_locked: bool
    failed_attempts: int
    opened_at: datetime
    activated_at: datetime | None
    frozen_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, a: BankAccount) -> AccountRead:
        return cls(
            id=a.id,
            bank_code=a.bank_code,
            bank_card_number=mask_bank_card(a.bank_card_number),
            holder_id_number=mask_id_number(a.holder_id_number),
            card_id=a.card_id,
            state=a.state,
            allowed_actions=allowed_actions(AccountState(a.state)),
            password_set=a.password_hash is not None,
            password_locked=a.locked_at is not None,
            failed_attempts=a.failed_attempts,
            opened_at=a.opened_at,
            activated_at=a.activated_at,
            frozen_at=a.frozen_at,
            closed_at=a.closed_at,
        )


class AccountEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    bank_code: str
    from_state: str
    to_state: str
    action: str
    actor_staff_id: int | None
    actor_org_id: int | None
    source: str
    channel: str
    occurred_at: datetime
    detail: dict[str, Any]


class AccountChanged(BaseModel):
    account: AccountRead
    event: AccountEventRead | None

    @classmethod
    def of(cls, account: BankAccount, event: BankAccountEvent | None) -> AccountChanged:
        return cls(
            account=AccountRead.of(account),
            event=AccountEventRead.model_validate(event) if event else None,
        )


class AccountDetail(BaseModel):
    account: AccountRead
    events: list[AccountEventRead]  # newest first


class PasswordCheckRead(BaseModel):
    verified: bool
    locked: bool
    attempts_left: int
    account: AccountRead

    @classmethod
    def of(cls, check: PasswordCheck) -> PasswordCheckRead:
        return cls(
            verified=check.entry.verified,
            locked=check.entry.locked,
            attempts_left=check.entry.attempts_left,
            account=AccountRead.of(check.account),
        )
