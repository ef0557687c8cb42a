"""Application endpoints: unit batches, individual forms, corrections, change requests."""

from __future__ import annotations

from io import BytesIO

import barcode
from barcode.writer import SVGWriter
from fastapi import APIRouter, Response, status

from sscard.access.model import RecordScope, require, require_scope
from sscard.access.scoping import record_of_application, record_of_batch
from sscard.api.schemas import (
    ApplicationRead,
    BatchIn,
    BatchIssued,
    BatchRead,
    ChangeDecisionIn,
    ChangeRequestIn,
    ChangeRequestRead,
    CheckBatchIn,
    CheckIndividualIn,
    CorrectionIn,
    IndividualIn,
    ReturnFormIn,
    SummaryLine,
    SummaryRead,
    agent_of,
)
from sscard.api.unit import UnitRoute, Uow
from sscard.applications import batches, changes, service
from sscard.applications.tables import Application
from sscard.core.errors import InvalidInput
from sscard.core.ids import mask_id_number

router = APIRouter(route_class=UnitRoute, tags=["applications"])


def _summary(summary: batches.Summary) -> SummaryRead:
    lines = [
        SummaryLine(
            application_id=a.id,
            form_number=a.form_number,
            name=p.name,
            id_number=mask_id_number(p.id_number),
            state=a.state,
            reject_reason=a.reject_reason,
        )
        for a, p in summary.accepted + summary.rejected
    ]
    return SummaryRead(
        batch=BatchRead.model_validate(summary.batch),
        unit_code=summary.unit.code,
        unit_name=summary.unit.name,
        accepted=len(summary.accepted),
        rejected=len(summary.rejected),
        cards_ready_on=summary.ready_on,
        lines=sorted(lines, key=lambda line: line.application_id),
    )


@router.post("/batches", response_model=BatchIssued, status_code=status.HTTP_201_CREATED)
def issue_batch(body: BatchIn, uow: Uow) -> BatchIssued:
    """A-2 step 2, A-4: give the unit administrator this stage's application forms."""
    batch, apps = batches.issue_batch(
        uow,
        uow.rt,
        actor=uow.actor,
        unit_code=body.unit_code,
        stage=body.stage,
        collector=batches.Collector(
            name=body.collector.name,
            id_number=body.collector.id_number,
            agent=agent_of(body.collector.agent),
        ),
        limit=body.limit,
    )
    return BatchIssued(
        batch=BatchRead.model_validate(batch),
        forms=[ApplicationRead.model_validate(a) for a in apps],
    )


@router.get("/batches/{batch_id}", response_model=SummaryRead)
def get_batch(batch_id: int, uow: Uow) -> SummaryRead:
    """The batch and its registration summary (申领登记汇总表)."""
    s = uow.session
    require(uow.actor, "batches.read")
    summary = batches.batch_summary(s, batch_id)
    require_scope(uow.actor, "batches.read", record_of_batch(summary.batch))
    return _summary(summary)


@router.post("/batches/{batch_id}/return", response_model=BatchRead)
def return_batch(batch_id: int, uow: Uow) -> BatchRead:
    """A-2 step 5: the unit returns its forms to the service point."""
    return BatchRead.model_validate(
        batches.return_batch(uow, uow.rt, actor=uow.actor, batch_id=batch_id)
    )


@router.post("/batches/{batch_id}/check", response_model=SummaryRead)
def check_batch(batch_id: int, body: CheckBatchIn, uow: Uow) -> SummaryRead:
    """A-2 step 6: check the forms, order the cards, answer with the summary."""
    return _summary(
        batches.check_batch(
            uow, uow.rt, actor=uow.actor, batch_id=batch_id, rejections=body.rejections
        )
    )


@router.post("/applications", response_model=ApplicationRead, status_code=status.HTTP_201_CREATED)
def issue_individual(body: IndividualIn, uow: Uow) -> Application:
    """A-3, B-3: a flexible employee's bank choice and form."""
    return service.issue_individual(
        uow,
        uow.rt,
        actor=uow.actor,
        person_id=body.person_id,
        bank_code=body.bank_code,
        agent=agent_of(body.agent),
    )


@router.get("/applications/{application_id}", response_model=ApplicationRead)
def get_application(application_id: int, uow: Uow) -> Application:
    """One application registration form."""
    s = uow.session
    require(uow.actor, "applications.read")
    app = service.get_application(s, application_id)
    require_scope(uow.actor, "applications.read", record_of_application(s, app))
    return app


@router.get(
    "/applications/{application_id}/barcode.svg",
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def form_barcode(application_id: int, uow: Uow) -> Response:
    """A-4: the form number as a Code 128 barcode, for printing on the form."""
    s = uow.session
    require(uow.actor, "applications.read")
    app = service.get_application(s, application_id)
    require_scope(uow.actor, "applications.read", record_of_application(s, app))
    out = BytesIO()
    barcode.get("code128", app.form_number, writer=SVGWriter()).write(out)
    return Response(out.getvalue(), media_type="image/svg+xml")


@router.post("/applications/{application_id}/corrections", response_model=ApplicationRead)
def correct(application_id: int, body: CorrectionIn, uow: Uow) -> Application:
    """A-2 step 4, C-3: the insured's corrections and photo choice."""
    return service.correct_form(
        uow,
        uow.rt,
        actor=uow.actor,
        application_id=application_id,
        changes=body.changes,
        photo_source=body.photo_source,
        photo_receipt_no=body.photo_receipt_no,
        studio_code=body.studio_code,
    )


@router.post("/applications/{application_id}/return", response_model=ApplicationRead)
def return_form(application_id: int, uow: Uow, body: ReturnFormIn | None = None) -> Application:
    """A-3 step 4: an individual (or their agent, A-5) returns the form."""
    return service.return_form(
        uow,
        uow.rt,
        actor=uow.actor,
        application_id=application_id,
        agent=agent_of(body.agent if body else None),
    )


@router.post("/applications/{application_id}/check", response_model=ApplicationRead)
def check_form(application_id: int, body: CheckIndividualIn, uow: Uow) -> Application:
    """A-3 step 5: accept (orders the card) or reject with a reason."""
    reason = None
    if body.decision == "reject":
        reason = (body.reject_reason or "").strip() or None
        if reason is None:
            raise InvalidInput("a rejection needs reject_reason", field="reject_reason")
    app, _ = service.check_individual(
        uow, uow.rt, actor=uow.actor, application_id=application_id, reject_reason=reason
    )
    return app


@router.post(
    "/change-requests", response_model=ChangeRequestRead, status_code=status.HTTP_201_CREATED
)
def create_change_request(body: ChangeRequestIn, uow: Uow) -> ChangeRequestRead:
    """ID-4: draft a change of name or ID number."""
    return ChangeRequestRead.of(
        changes.create_request(
            uow,
            uow.rt,
            actor=uow.actor,
            person_id=body.person_id,
            field_name=body.field_name,
            new_value=body.new_value,
            document=body.document,
        )
    )


@router.get("/change-requests/{request_id}", response_model=ChangeRequestRead)
def get_change_request(request_id: int, uow: Uow) -> ChangeRequestRead:
    """One change request with old and new values."""
    s = uow.session
    require(uow.actor, "change_requests.read")
    req = changes.get_request(s, request_id)
    require_scope(
        uow.actor,
        "change_requests.read",
        RecordScope(what=f"change request with id {request_id}", person_id=req.person_id),
    )
    return ChangeRequestRead.of(req)


def _decide(action: str):  # type: ignore[no-untyped-def]
    def endpoint(request_id: int, body: ChangeDecisionIn, uow: Uow) -> ChangeRequestRead:
        return ChangeRequestRead.of(
            changes.decide(
                uow,
                uow.rt,
                actor=uow.actor,
                request_id=request_id,
                action=action,
                reason=body.reason,
            )
        )

    endpoint.__doc__ = f"ID-4: {action} a change request."
    endpoint.__name__ = f"{action}_change_request"
    return endpoint


for _action in ("submit", "withdraw", "approve", "decline"):
    router.add_api_route(
        f"/change-requests/{{request_id}}/{_action}",
        _decide(_action),
        methods=["POST"],
        response_model=ChangeRequestRead,
    )
