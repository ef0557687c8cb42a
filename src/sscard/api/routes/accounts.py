"""The medical personal account: settlement, refunds, inquiry, consumption password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status

from sscard.accounts import inquiry, passwords, settlement
from sscard.accounts.schemas import (
    Done,
    InquiryIn,
    PasswordChangeIn,
    ReceiptRead,
    RefundIn,
    SettlementIn,
    StatementRead,
)
from sscard.accounts.schemas import (
    PasswordResetIn as ResetIn,
)
from sscard.api.schemas import AgentIn, agent_of
from sscard.api.unit import UnitRoute, Uow
from sscard.core.errors import InvalidInput

router = APIRouter(tags=["medical account"], route_class=UnitRoute)


class PasswordResetIn(ResetIn):
    """P-2 with ID and card; A-5: an agent only where the region's policy allows it."""

    agent: AgentIn | None = None


RequiredKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def _key(value: str | None) -> None:
    if not value:
        raise InvalidInput(
            "payments need an Idempotency-Key header, the same on every retry",
            field="Idempotency-Key",
        )


def _receipt(r: settlement.Receipt) -> ReceiptRead:
    return ReceiptRead(
        transaction_id=r.transaction_id,
        kind=r.kind,
        amount_fen=r.amount_fen,
        balance_fen=r.balance_fen,
        card_id=r.card_id,
        card_state=r.card_state,
        activated=r.activated,
        replayed=False,  # a replay of the first answer says true (api.unit)
        at=r.at,
    )


@router.post("/settlements", response_model=ReceiptRead, status_code=status.HTTP_201_CREATED)
def settle(body: SettlementIn, uow: Uow, key: RequiredKey = None) -> ReceiptRead:
    """Pay at a designated hospital or pharmacy; the first use activates the card (V-1)."""
    _key(key)
    return _receipt(
        settlement.settle(
            uow,
            uow.rt,
            actor=uow.actor,
            card_number=body.card_number,
            kind=body.kind,
            amount_fen=body.amount_fen,
            password=body.password,
            new_password=body.new_password,
            old_medical_card_no=body.old_medical_card_no,
        )
    )


@router.post(
    "/settlements/{settlement_id}/refunds",
    response_model=ReceiptRead,
    status_code=status.HTTP_201_CREATED,
)
def refund(settlement_id: int, body: RefundIn, uow: Uow, key: RequiredKey = None) -> ReceiptRead:
    """Refund a settlement once, for at most its amount."""
    _key(key)
    return _receipt(
        settlement.refund(
            uow, uow.rt, actor=uow.actor, settlement_id=settlement_id, amount_fen=body.amount_fen
        )
    )


@router.post("/medical-accounts/inquiries", response_model=StatementRead)
def inquire(body: InquiryIn, uow: Uow) -> StatementRead:
    """Q-1: a cardholder's balance, entries and payment records, asked at a window."""
    person_id, st = inquiry.inquire(
        uow.session, actor=uow.actor, id_number=body.id_number, after=body.after, limit=body.limit
    )
    return StatementRead.of(st, person_id=person_id)


@router.post("/medical-passwords/resets", response_model=Done)
def reset_password(body: PasswordResetIn, uow: Uow) -> Done:
    """P-2: unlock and reset the consumption password at an outlet with ID and card."""
    person = passwords.reset(
        uow,
        uow.rt,
        actor=uow.actor,
        card_number=body.card_number,
        id_number=body.id_number,
        new_password=body.new_password,
        agent=agent_of(body.agent),
    )
    return Done(person_id=person.id, result="reset")


@router.post("/medical-passwords/changes", response_model=Done)
def change_password(body: PasswordChangeIn, uow: Uow) -> Done:
    """P-3: change the consumption password at a pharmacy, platform or outlet."""
    person_id = passwords.change(
        uow,
        uow.rt,
        actor=uow.actor,
        card_number=body.card_number,
        old_password=body.old_password,
        new_password=body.new_password,
    )
    return Done(person_id=person_id, result="changed")
