"""The issuing bank's endpoints: financial activation, passwords, account inquiry (C-1).

Card and ID numbers travel only in request bodies, never in URLs; passwords only
come in, and count into Idempotency-Key fingerprints only as a keyed digest.
"""

from __future__ import annotations

from fastapi import APIRouter

from sscard.api.schemas import AgentIn, agent_of
from sscard.api.unit import UnitRoute, Uow
from sscard.bank import service
from sscard.bank.schemas import (
    AccountChanged,
    AccountDetail,
    AccountEventRead,
    AccountRead,
    CardIn,
    PasswordChangeIn,
    PasswordCheckIn,
    PasswordCheckRead,
)
from sscard.bank.schemas import (
    FinancialActivationIn as ActivationIn,
)
from sscard.bank.schemas import (
    PasswordResetIn as ResetIn,
)

router = APIRouter(prefix="/bank", tags=["bank"], route_class=UnitRoute)


class FinancialActivationIn(ActivationIn):
    """V-1, V-2; A-5: an agent only where the region's policy allows activation by agent."""

    agent: AgentIn | None = None


class PasswordResetIn(ResetIn):
    """P-2; A-5: an agent only where the region's policy allows a reset by agent."""

    agent: AgentIn | None = None


def _changed(change: service.AccountChange) -> AccountChanged:
    return AccountChanged.of(change.account, change.event)


@router.post("/financial-activations", response_model=AccountChanged)
def activate(body: FinancialActivationIn, uow: Uow) -> AccountChanged:
    """V-1, V-2: activate the financial application and set its password; tells the center."""
    return _changed(
        service.activate_financial(
            uow,
            uow.rt,
            actor=uow.actor,
            bank_card_number=body.bank_card_number,
            id_number=body.id_number,
            financial_password=body.financial_password.get_secret_value(),
            agent=agent_of(body.agent),
        )
    )


@router.post("/password-checks", response_model=PasswordCheckRead)
def check_password(body: PasswordCheckIn, uow: Uow) -> PasswordCheckRead:
    """P-2: check the financial password; wrong entries count, enough of them lock it."""
    return PasswordCheckRead.of(
        service.verify_financial_password(
            uow,
            uow.rt,
            actor=uow.actor,
            bank_card_number=body.bank_card_number,
            financial_password=body.financial_password.get_secret_value(),
        )
    )


@router.post("/password-resets", response_model=AccountChanged)
def reset_password(body: PasswordResetIn, uow: Uow) -> AccountChanged:
    """P-2: unlock and reset the financial password at an outlet with ID and card."""
    return _changed(
        service.reset_financial_password(
            uow,
            uow.rt,
            actor=uow.actor,
            bank_card_number=body.bank_card_number,
            id_number=body.id_number,
            new_password=body.new_password.get_secret_value(),
            agent=agent_of(body.agent),
        )
    )


@router.post("/password-changes", response_model=AccountChanged)
def change_password(body: PasswordChangeIn, uow: Uow) -> AccountChanged:
    """P-3: change the financial password with the old one."""
    return _changed(
        service.change_financial_password(
            uow,
            uow.rt,
            actor=uow.actor,
            bank_card_number=body.bank_card_number,
            old_password=body.old_password.get_secret_value(),
            new_password=body.new_password.get_secret_value(),
        )
    )


@router.post("/accounts/search", response_model=AccountDetail)
def search_account(body: CardIn, uow: Uow) -> AccountDetail:
    """The account of a bank card and its latest events, for its own bank (S-1)."""
    s = uow.session
    found = service.find_account(s, actor=uow.actor, bank_card_number=body.bank_card_number)
    return AccountDetail(
        account=AccountRead.of(found.account),
        events=[AccountEventRead.model_validate(e) for e in found.events],
    )
