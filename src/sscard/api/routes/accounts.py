"""The medical personal account: settlement, refunds, inquiry, consumption password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status

from sscard.access.model import Service, require, require_authorised, require_scope
from sscard.access.scoping import record_of_person
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
from sscard.api.deps import CurrentActor, ReadSession, RuntimeDep
from sscard.api.schemas import AgentIn, agent_of
from sscard.core.errors import InvalidInput
from sscard.register.service import find_person, granted

router = APIRouter(tags=["medical account"])


class PasswordResetIn(ResetIn):
    """P-2 with ID and card; A-5: an agent only where the region's policy allows it."""

    agent: AgentIn | None = None


RequiredKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def _key(value: str | None) -> str:
    if not value:
        raise InvalidInput(
            "payments need an Idempotency-Key header, the same on every retry",
            field="Idempotency-Key",
        )
    return value


def _receipt(r: settlement.Receipt) -> ReceiptRead:
    return ReceiptRead(
        transaction_id=r.txn.id,
        kind=r.txn.kind,
        amount_fen=r.txn.amount_fen,
        balance_fen=r.balance_fen,
        card_id=r.card_id,
        card_state=r.card_state,
        activated=r.activated,
        replayed=r.replayed,
        at=r.txn.created_at,
    )


@router.post("/settlements", response_model=ReceiptRead, status_code=status.HTTP_201_CREATED)
def settle(
    body: SettlementIn, rt: RuntimeDep, actor: CurrentActor, key: RequiredKey = None
) -> ReceiptRead:
    """Pay at a designated hospital or pharmacy; the first use activates the card (V-1)."""
    return _receipt(
        settlement.settle(
            rt,
            actor=actor,
            card_number=body.card_number,
            kind=body.kind,
            amount_fen=body.amount_fen,
            idempotency_key=_key(key),
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
def refund(
    settlement_id: int, body: RefundIn, rt: RuntimeDep, actor: CurrentActor, key: RequiredKey = None
) -> ReceiptRead:
    """Refund a settlement once, for at most its amount."""
    return _receipt(
        settlement.refund(
            rt,
            actor=actor,
            settlement_id=settlement_id,
            amount_fen=body.amount_fen,
            idempotency_key=_key(key),
        )
    )


@router.post("/medical-accounts/inquiries", response_model=StatementRead)
def inquire(body: InquiryIn, s: ReadSession, actor: CurrentActor) -> StatementRead:
    """Q-1: a cardholder's balance, entries and payment records, asked at a window."""
    require(actor, "accounts.inquire")
    require_authorised(actor, Service.INQUIRY, granted(s, actor))
    person = find_person(s, body.id_number)
    require_scope(
        actor,
        "accounts.inquire",
        record_of_person(
            s,
            person,
            what="person with this ID number is registered",
            field="id_number",
            presented=True,
        ),
    )
    st = inquiry.statement(s, person_id=person.id, after=body.after, limit=body.limit)
    return StatementRead.of(st, person_id=person.id)


@router.post("/medical-passwords/resets", response_model=Done)
def reset_password(body: PasswordResetIn, rt: RuntimeDep, actor: CurrentActor) -> Done:
    """P-2: unlock and reset the consumption password at an outlet with ID and card."""
    with rt.uow() as uow:
        person = passwords.reset(
            uow,
            rt,
            actor=actor,
            card_number=body.card_number,
            id_number=body.id_number,
            new_password=body.new_password,
            agent=agent_of(body.agent),
        )
    return Done(person_id=person.id, result="reset")


@router.post("/medical-passwords/changes", response_model=Done)
def change_password(body: PasswordChangeIn, rt: RuntimeDep, actor: CurrentActor) -> Done:
    """P-3: change the consumption password at a pharmacy, platform or outlet."""
    person_id = passwords.change(
        rt,
        actor=actor,
        card_number=body.card_number,
        old_password=body.old_password,
        new_password=body.new_password,
    )
    return Done(person_id=person_id, result="changed")
