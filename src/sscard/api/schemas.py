"""API shapes, apart from the tables. Identifiers are masked in every response."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sscard.access.model import Agent, AgentDocument
from sscard.core.ids import mask_bank_card, mask_id_number, mask_phone


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentIn(_In):
    """A-5: someone acting for the person."""

    name: str = Field(min_length=1, max_length=100)
    id_number: str = Field(min_length=1, max_length=18)
    document: AgentDocument
    document_ref: str = Field(default="", max_length=100)

    def to_agent(self) -> Agent:
        return Agent(
            name=self.name,
            id_number=self.id_number,
            document=self.document,
            document_ref=self.document_ref,
        )


def agent_of(value: AgentIn | None) -> Agent | None:
    return value.to_agent() if value else None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None


class MeRead(BaseModel):
    staff_id: int | None
    name: str
    role: str
    organization: str
    organization_kind: str
    bank_code: str | None
    operations: list[str]
    # Who this is (person, service or cardholder) and how the request authenticated
    # (session, credential or token); a cardholder's ID number comes back masked.
    kind: str = "person"
    authenticated_by: str = "token"
    person_id: int | None = None
    id_number: str | None = None
    # S-1: each operation this actor may perform, with its record scope (access.policy).
    scopes: dict[str, str] = {}


# ---------------------------------------------------------------- register


class OrganizationIn(_In):
    kind: str
    code: str
    name: str
    parent_code: str | None = None
    address: str | None = Field(default=None, max_length=300)


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    code: str
    name: str
    parent_id: int | None
    bank_code: str | None
    authorisations: list[str]


class AuthorisationIn(_In):
    service: str
    granted: bool = True


class UnitIn(_In):
    code: str
    name: str
    uscc: str
    unit_kind: str = "ordinary"


class UnitRead(BaseModel):
    id: int
    code: str
    name: str
    uscc: str
    unit_kind: str
    agreement_bank_code: str | None
    agreement_signed_at: datetime | None


class AgreementIn(_In):
    bank_code: str


class PersonIn(_In):
    id_number: str = Field(max_length=40)
    name: str
    status: str = "employed"
    phone: str | None = None
    unit_code: str | None = None
    medical_scheme: str = "employee"
    insured_since: date | None = None
    old_medical_card_no: str | None = Field(default=None, max_length=32)


class PersonSearchIn(_In):
    id_number: str = Field(max_length=40)


class PersonRead(BaseModel):
    id: int
    id_number: str  # masked
    id_kind: str
    name: str
    gender: str
    birth_date: date
    status: str
    phone: str | None  # masked
    unit_org_id: int | None
    medical_scheme: str
    insured_since: date | None
    old_medical_card_state: str

    @classmethod
    def of(cls, p: Any) -> PersonRead:
        return cls(
            id=p.id,
            id_number=mask_id_number(p.id_number),
            id_kind=p.id_kind,
            name=p.name,
            gender=p.gender,
            birth_date=p.birth_date,
            status=p.status,
            phone=mask_phone(p.phone) if p.phone else None,
            unit_org_id=p.unit_org_id,
            medical_scheme=p.medical_scheme,
            insured_since=p.insured_since,
            old_medical_card_state=p.old_medical_card_state,
        )


class PersonRecordIn(_In):
    kind: str
    title: str
    started_on: date | None = None
    ended_on: date | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class PersonRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    person_id: int
    kind: str
    title: str
    started_on: date | None
    ended_on: date | None
    detail: dict[str, Any]


# ---------------------------------------------------------------- applications


class CollectorIn(_In):
    name: str = Field(min_length=1, max_length=100)
    id_number: str = Field(max_length=40)
    agent: AgentIn | None = None


class BatchIn(_In):
    unit_code: str
    stage: str = Field(min_length=1, max_length=40)
    collector: CollectorIn
    limit: int = 20_000


class ApplicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    form_number: str
    person_id: int
    batch_id: int | None
    kind: str
    state: str
    bank_code: str
    photo_source: str | None
    photo_receipt_no: str | None
    form_data: dict[str, Any]  # phone masked
    corrections: list[dict[str, Any]]  # phone values masked
    return_due: date | None
    issued_at: datetime
    returned_at: datetime | None
    decided_at: datetime | None
    reject_reason: str | None

    @field_validator("form_data")
    @classmethod
    def _mask_form(cls, data: dict[str, Any]) -> dict[str, Any]:
        phone = data.get("phone")
        return {**data, "phone": mask_phone(phone)} if phone else data

    @field_validator("corrections")
    @classmethod
    def _mask_corrections(cls, log: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def masked(entry: dict[str, Any]) -> dict[str, Any]:
            if entry.get("field") != "phone":
                return entry
            return {**entry, **{k: mask_phone(v) for k in ("old", "new") if (v := entry.get(k))}}

        return [masked(e) for e in log]


class BatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    unit_org_id: int
    stage: str
    state: str
    bank_code: str
    issued_at: datetime
    return_due: date
    returned_at: datetime | None
    checked_at: datetime | None
    overdue_at: datetime | None


class BatchIssued(BaseModel):
    batch: BatchRead
    forms: list[ApplicationRead]


class SummaryLine(BaseModel):
    application_id: int
    form_number: str
    name: str
    id_number: str  # masked
    state: str
    reject_reason: str | None


class SummaryRead(BaseModel):
    """申领登记汇总表: the registration summary for the unit."""

    batch: BatchRead
    unit_code: str
    unit_name: str
    accepted: int
    rejected: int
    cards_ready_on: str | None
    lines: list[SummaryLine]


class CheckBatchIn(_In):
    rejections: dict[int, str] = Field(default_factory=dict)


class IndividualIn(_In):
    person_id: int
    bank_code: str
    agent: AgentIn | None = None


class CorrectionIn(_In):
    changes: dict[str, str] = Field(default_factory=dict)
    photo_source: str | None = None
    photo_receipt_no: str | None = None
    studio_code: str | None = None


class ReturnFormIn(_In):
    """A-3 step 4; A-5: an agent returning the form shows the principal's ID."""

    agent: AgentIn | None = None


class CheckIndividualIn(_In):
    decision: Literal["accept", "reject"]
    reject_reason: str | None = Field(default=None, max_length=300)


class ChangeRequestIn(_In):
    person_id: int
    field_name: Literal["name", "id_number"]
    new_value: str = Field(max_length=100)
    document: str = Field(max_length=200)


class ChangeDecisionIn(_In):
    reason: str | None = Field(default=None, max_length=300)


class ChangeRequestRead(BaseModel):
    id: int
    person_id: int
    field_name: str
    old_value: str
    new_value: str
    document: str
    state: str
    created_at: datetime
    decided_at: datetime | None
    decline_reason: str | None
    card_change_done: bool

    @classmethod
    def of(cls, r: Any) -> ChangeRequestRead:
        mask = mask_id_number if r.field_name == "id_number" else (lambda v: v)
        return cls(
            id=r.id,
            person_id=r.person_id,
            field_name=r.field_name,
            old_value=mask(r.old_value),
            new_value=mask(r.new_value),
            document=r.document,
            state=r.state,
            created_at=r.created_at,
            decided_at=r.decided_at,
            decline_reason=r.decline_reason,
            card_change_done=r.card_change_done,
        )


# ---------------------------------------------------------------- cards


class CardRead(BaseModel):
    id: int
    person_id: int
    state: str
    allowed_actions: list[str]
    bank_code: str
    card_number: str | None
    serial: str | None
    bank_card_number: str | None  # masked
    outlet_org_id: int | None
    unit_org_id: int | None
    ready_on: date
    ready_provisional: bool
    valid_until: date | None
    handout_due: date | None
    received_at: datetime | None
    activated_at: datetime | None
    activation_channel: str | None
    financial_activated_at: datetime | None
    loss_reported_at: datetime | None
    oral_loss_lapses_at: datetime | None
    written_report_no: str | None
    replaced_by_card_id: int | None

    @classmethod
    def of(cls, c: Any) -> CardRead:
        from sscard.cards.model import CardState, allowed_actions

        return cls(
            id=c.id,
            person_id=c.person_id,
            state=c.state,
            allowed_actions=allowed_actions(CardState(c.state)),
            bank_code=c.bank_code,
            card_number=c.card_number,
            serial=c.serial,
            bank_card_number=mask_bank_card(c.bank_card_number) if c.bank_card_number else None,
            outlet_org_id=c.outlet_org_id,
            unit_org_id=c.unit_org_id,
            ready_on=c.ready_on,
            ready_provisional=c.ready_provisional,
            valid_until=c.valid_until,
            handout_due=c.handout_due,
            received_at=c.received_at,
            activated_at=c.activated_at,
            activation_channel=c.activation_channel,
            financial_activated_at=c.financial_activated_at,
            loss_reported_at=c.loss_reported_at,
            oral_loss_lapses_at=c.oral_loss_lapses_at,
            written_report_no=c.written_report_no,
            replaced_by_card_id=c.replaced_by_card_id,
        )


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    card_id: int
    from_state: str
    to_state: str
    action: str
    channel: str
    reason_code: str | None
    place_org_id: int | None
    actor_staff_id: int | None
    agent: dict[str, Any] | None
    occurred_at: datetime


class FeeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    basis: str
    amount_fen: int
    voucher_no: str | None
    paid_at: datetime


class CardMoved(BaseModel):
    card: CardRead
    transitions: list[TransitionRead]
    fee: FeeRead | None = None


class Reissue(BaseModel):
    old_card: CardRead
    transitions: list[TransitionRead]
    new_card: CardRead
    fee: FeeRead


class ProductionIn(_In):
    card_number: str = Field(max_length=32)
    serial: str = Field(max_length=32)
    bank_card_number: str = Field(max_length=25)
    outlet_code: str


class PickupIn(_In):
    by: Literal["unit_administrator", "holder"]
    agent: AgentIn | None = None
    activate: bool = False
    medical_password: str | None = Field(default=None, max_length=6)
    financial_password: str | None = Field(default=None, max_length=6)
    id_number: str | None = Field(default=None, max_length=40)  # shown for the bank's check


class ReturnIn(_In):
    reason: Literal["left_unit", "unreachable"]


class ActivationIn(_In):
    channel: str
    agent: AgentIn | None = None
    # S-1: a hospital, pharmacy, 12333 or platform names the card presented to it by the
    # number printed on it; it never acts on a card by its id alone.
    card_number: str | None = Field(default=None, max_length=20)
    old_medical_card_no: str | None = Field(default=None, max_length=32)
    # V-2: both passwords are set at activation (six digits each, never returned); the
    # financial one at an outlet, with the holder's ID for the bank's check.
    medical_password: str | None = Field(default=None, max_length=6)
    financial_password: str | None = Field(default=None, max_length=6)
    id_number: str | None = Field(default=None, max_length=40)


class LossReportIn(_In):
    kind: Literal["oral", "written"]
    channel: str | None = None
    agent: AgentIn | None = None
    # S-1: 12333 names the card the caller reports by the number printed on it.
    card_number: str | None = Field(default=None, max_length=20)


class CancelLossIn(_In):
    written_report_no: str | None = Field(default=None, max_length=32)
    agent: AgentIn | None = None


class ReplacementIn(_In):
    agent: AgentIn | None = None


class ChangeIn(_In):
    reason: str
    photo_receipt_no: str | None = Field(default=None, max_length=40)
    studio_code: str | None = None
    agent: AgentIn | None = None


class CardCheckIn(_In):
    card_number: str = Field(max_length=32)


class CardCheckRead(BaseModel):
    card_id: int
    state: str
    usable: bool
    reason: str


class Page(BaseModel):
    next: str | None


class PersonPage(Page):
    items: list[PersonRead]


class CardPage(Page):
    items: list[CardRead]


class OrganizationPage(Page):
    items: list[OrganizationRead]


# ---------------------------------------------------------------- admin


class SweepRead(BaseModel):
    applied: dict[str, int]
    at: datetime


class WorkingDayRead(BaseModel):
    start: date
    working_days: int
    date: date
    provisional: bool


class ScheduleRead(BaseModel):
    year: int
    holidays: int
    workdays: int


class ClockIn(_In):
    days: int = Field(ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=24 * 365)


class ClockRead(BaseModel):
    now: datetime
    today: date
    offset_days: float
