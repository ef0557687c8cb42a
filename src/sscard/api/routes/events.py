"""Partner events: webhook subscriptions, dead letters, attempts, replays, the event feed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sscard.api.deps import CurrentActor, ReadSession, RuntimeDep
from sscard.events import endpoints, service
from sscard.events.schemas import (
    AttemptPage,
    AttemptRead,
    EventPage,
    FailurePage,
    FailureRead,
    RedeliveryRead,
    ReplayIn,
    ReplayRead,
    WebhookIn,
    WebhookList,
    WebhookRead,
    WebhookSecretRead,
)

router = APIRouter(tags=["partner events"])


def _with_secret(sub: service.Subscribed) -> WebhookSecretRead:
    return WebhookSecretRead(**WebhookRead.of(sub.subscription).model_dump(), secret=sub.secret)


@router.post("/webhooks", response_model=WebhookSecretRead, status_code=201)
def subscribe(
    body: WebhookIn, request: Request, rt: RuntimeDep, actor: CurrentActor
) -> WebhookSecretRead:
    """Register a webhook endpoint for your organization; the secret is shown only now."""
    allow = endpoints.loopback_allowed() or bool(request.app.state.demo)
    with rt.uow() as uow:
        made = service.subscribe(
            uow,
            rt,
            actor=actor,
            url=body.url,
            event_types=body.event_types,
            allow_loopback=allow,
        )
    return _with_secret(made)


@router.get("/webhooks", response_model=WebhookList)
def list_webhooks(s: ReadSession, actor: CurrentActor) -> WebhookList:
    """Your organization's webhooks."""
    return WebhookList(items=[WebhookRead.of(w) for w in service.subscriptions(s, actor=actor)])


@router.get("/webhook-failures", response_model=FailurePage)
def all_failures(
    s: ReadSession, actor: CurrentActor, after: str | None = None, limit: int = 50
) -> FailurePage:
    """The center: every webhook's dead letters."""
    page = service.failures(s, actor=actor, subscription_id=None, after=after, limit=limit)
    return FailurePage(items=[FailureRead.of(d) for d in page.items], next=page.next)


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead)
def get_webhook(webhook_id: int, s: ReadSession, actor: CurrentActor) -> WebhookRead:
    """One of your organization's webhooks."""
    return WebhookRead.of(service.get_subscription(s, actor=actor, subscription_id=webhook_id))


@router.post("/webhooks/{webhook_id}/pause", response_model=WebhookRead)
def pause(webhook_id: int, rt: RuntimeDep, actor: CurrentActor) -> WebhookRead:
    """Stop delivering; events keep queueing and go out in order on resume."""
    with rt.uow() as uow:
        sub = service.set_paused(uow, rt, actor=actor, subscription_id=webhook_id, paused=True)
    return WebhookRead.of(sub)


@router.post("/webhooks/{webhook_id}/resume", response_model=WebhookRead)
def resume(webhook_id: int, rt: RuntimeDep, actor: CurrentActor) -> WebhookRead:
    """Deliver again, starting with the oldest queued event."""
    with rt.uow() as uow:
        sub = service.set_paused(uow, rt, actor=actor, subscription_id=webhook_id, paused=False)
    return WebhookRead.of(sub)


@router.post("/webhooks/{webhook_id}/secret-rotations", response_model=WebhookSecretRead)
def rotate(webhook_id: int, rt: RuntimeDep, actor: CurrentActor) -> WebhookSecretRead:
    """A new signing secret, shown only now; the old one also signs for 24 hours."""
    with rt.uow() as uow:
        made = service.rotate_secret(uow, rt, actor=actor, subscription_id=webhook_id)
    return _with_secret(made)


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: int, rt: RuntimeDep, actor: CurrentActor) -> Response:
    """Delete a webhook with its queue, dead letters and attempts."""
    with rt.uow() as uow:
        service.unsubscribe(uow, rt, actor=actor, subscription_id=webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/failures", response_model=FailurePage)
def failures(
    webhook_id: int, s: ReadSession, actor: CurrentActor, after: str | None = None, limit: int = 50
) -> FailurePage:
    """The webhook's dead letters: events that failed for good."""
    page = service.failures(s, actor=actor, subscription_id=webhook_id, after=after, limit=limit)
    return FailurePage(items=[FailureRead.of(d) for d in page.items], next=page.next)


@router.post(
    "/webhooks/{webhook_id}/failures/{failure_id}/redelivery",
    response_model=RedeliveryRead,
    status_code=202,
)
def redeliver(
    webhook_id: int, failure_id: int, rt: RuntimeDep, actor: CurrentActor
) -> RedeliveryRead:
    """Queue a dead letter again, behind the webhook's current queue."""
    with rt.uow() as uow:
        again = service.redeliver(
            uow, rt, actor=actor, subscription_id=webhook_id, failure_id=failure_id
        )
    return RedeliveryRead(delivery_id=again.id, event_id=f"evt_{again.event_id}", state=again.state)


@router.get("/webhooks/{webhook_id}/attempts", response_model=AttemptPage)
def attempts(
    webhook_id: int, s: ReadSession, actor: CurrentActor, after: str | None = None, limit: int = 50
) -> AttemptPage:
    """The webhook's delivery attempts (status, duration, error class), oldest first."""
    page = service.attempts(s, actor=actor, subscription_id=webhook_id, after=after, limit=limit)
    return AttemptPage(items=[AttemptRead.of(a) for a in page.items], next=page.next)


@router.post("/webhooks/{webhook_id}/replays", response_model=ReplayRead, status_code=202)
def replay(webhook_id: int, body: ReplayIn, rt: RuntimeDep, actor: CurrentActor) -> ReplayRead:
    """Deliver your events after a cursor again (to catch up or rebuild)."""
    with rt.uow() as uow:
        queued, more = service.replay(
            uow, rt, actor=actor, subscription_id=webhook_id, after=body.after
        )
    return ReplayRead(queued=queued, next=more)


@router.get("/events", response_model=EventPage)
def list_events(
    s: ReadSession, rt: RuntimeDep, actor: CurrentActor, after: str | None = None, limit: int = 100
) -> EventPage:
    """Your organization's visible events after a cursor, in order, shaped as the webhooks."""
    items, more = service.events(s, rt, actor=actor, after=after, limit=limit)
    return EventPage(items=items, next=more)
