"""Partner events: webhook subscriptions, dead letters, attempts, replays, the event feed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sscard.api.unit import UnitRoute, Uow
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

router = APIRouter(route_class=UnitRoute, tags=["partner events"])


def _with_secret(sub: service.Subscribed) -> WebhookSecretRead:
    return WebhookSecretRead(**WebhookRead.of(sub.subscription).model_dump(), secret=sub.secret)


@router.post("/webhooks", response_model=WebhookSecretRead, status_code=201)
def subscribe(body: WebhookIn, request: Request, uow: Uow) -> WebhookSecretRead:
    """Register a webhook endpoint for your organization; the secret is shown only now."""
    allow = endpoints.loopback_allowed() or bool(request.app.state.demo)
    made = service.subscribe(
        uow,
        uow.rt,
        actor=uow.actor,
        url=body.url,
        event_types=body.event_types,
        allow_loopback=allow,
    )
    return _with_secret(made)


@router.get("/webhooks", response_model=WebhookList)
def list_webhooks(uow: Uow) -> WebhookList:
    """Your organization's webhooks."""
    s = uow.session
    return WebhookList(items=[WebhookRead.of(w) for w in service.subscriptions(s, actor=uow.actor)])


@router.get("/webhook-failures", response_model=FailurePage)
def all_failures(uow: Uow, after: str | None = None, limit: int = 50) -> FailurePage:
    """The center: every webhook's dead letters."""
    s = uow.session
    page = service.failures(s, actor=uow.actor, subscription_id=None, after=after, limit=limit)
    return FailurePage(items=[FailureRead.of(d) for d in page.items], next=page.next)


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead)
def get_webhook(webhook_id: int, uow: Uow) -> WebhookRead:
    """One of your organization's webhooks."""
    s = uow.session
    return WebhookRead.of(service.get_subscription(s, actor=uow.actor, subscription_id=webhook_id))


@router.post("/webhooks/{webhook_id}/pause", response_model=WebhookRead)
def pause(webhook_id: int, uow: Uow) -> WebhookRead:
    """Stop delivering; events keep queueing and go out in order on resume."""
    sub = service.set_paused(uow, uow.rt, actor=uow.actor, subscription_id=webhook_id, paused=True)
    return WebhookRead.of(sub)


@router.post("/webhooks/{webhook_id}/resume", response_model=WebhookRead)
def resume(webhook_id: int, uow: Uow) -> WebhookRead:
    """Deliver again, starting with the oldest queued event."""
    sub = service.set_paused(uow, uow.rt, actor=uow.actor, subscription_id=webhook_id, paused=False)
    return WebhookRead.of(sub)


@router.post("/webhooks/{webhook_id}/secret-rotations", response_model=WebhookSecretRead)
def rotate(webhook_id: int, uow: Uow) -> WebhookSecretRead:
    """A new signing secret, shown only now; the old one also signs for 24 hours."""
    made = service.rotate_secret(uow, uow.rt, actor=uow.actor, subscription_id=webhook_id)
    return _with_secret(made)


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: int, uow: Uow) -> Response:
    """Delete a webhook with its queue, dead letters and attempts."""
    service.unsubscribe(uow, uow.rt, actor=uow.actor, subscription_id=webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/failures", response_model=FailurePage)
def failures(webhook_id: int, uow: Uow, after: str | None = None, limit: int = 50) -> FailurePage:
    """The webhook's dead letters: events that failed for good."""
    s = uow.session
    page = service.failures(
        s, actor=uow.actor, subscription_id=webhook_id, after=after, limit=limit
    )
    return FailurePage(items=[FailureRead.of(d) for d in page.items], next=page.next)


@router.post(
    "/webhooks/{webhook_id}/failures/{failure_id}/redelivery",
    response_model=RedeliveryRead,
    status_code=202,
)
def redeliver(webhook_id: int, failure_id: int, uow: Uow) -> RedeliveryRead:
    """Queue a dead letter again, behind the webhook's current queue."""
    again = service.redeliver(
        uow, uow.rt, actor=uow.actor, subscription_id=webhook_id, failure_id=failure_id
    )
    return RedeliveryRead(delivery_id=again.id, event_id=f"evt_{again.event_id}", state=again.state)


@router.get("/webhooks/{webhook_id}/attempts", response_model=AttemptPage)
def attempts(webhook_id: int, uow: Uow, after: str | None = None, limit: int = 50) -> AttemptPage:
    """The webhook's delivery attempts (status, duration, error class), oldest first."""
    s = uow.session
    page = service.attempts(
        s, actor=uow.actor, subscription_id=webhook_id, after=after, limit=limit
    )
    return AttemptPage(items=[AttemptRead.of(a) for a in page.items], next=page.next)


@router.post("/webhooks/{webhook_id}/replays", response_model=ReplayRead, status_code=202)
def replay(webhook_id: int, body: ReplayIn, uow: Uow) -> ReplayRead:
    """Deliver your events after a cursor again (to catch up or rebuild)."""
    queued, more = service.replay(
        uow, uow.rt, actor=uow.actor, subscription_id=webhook_id, after=body.after
    )
    return ReplayRead(queued=queued, next=more)


@router.get("/events", response_model=EventPage)
def list_events(uow: Uow, after: str | None = None, limit: int = 100) -> EventPage:
    """Your organization's visible events after a cursor, in order, shaped as the webhooks."""
    s = uow.session
    items, more = service.events(s, uow.rt, actor=uow.actor, after=after, limit=limit)
    return EventPage(items=items, next=more)
