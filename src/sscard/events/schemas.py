"""API shapes of webhook subscriptions, dead letters, attempts and replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from sscard.events.tables import WebhookAttempt, WebhookDelivery, WebhookSubscription


class WebhookIn(BaseModel):
    url: str = Field(examples=["https://partner.example/sscard-events"], max_length=500)
    event_types: list[str] = Field(
        default_factory=lambda: ["*"], examples=[["card.*", "bank_account.frozen"]], max_length=50
    )


class WebhookRead(BaseModel):
    id: int
    url: str
    event_types: list[str]
    state: str
    created_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> WebhookRead:
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=list(sub.event_types),
            state=sub.state,
            created_at=sub.created_at,
        )


class WebhookSecretRead(WebhookRead):
    secret: str = Field(description="The signing secret (whsec_...), shown only now")


class WebhookList(BaseModel):
    items: list[WebhookRead]


class FailureRead(BaseModel):
    """A dead letter: the event that could not be delivered, and why."""

    id: int
    subscription_id: int
    event_id: str
    attempts: int
    last_status: int | None
    last_error: str | None
    failed_at: datetime | None

    @classmethod
    def of(cls, d: WebhookDelivery) -> FailureRead:
        return cls(
            id=d.id,
            subscription_id=d.subscription_id,
            event_id=f"evt_{d.event_id}",
            attempts=d.attempts,
            last_status=d.last_status,
            last_error=d.last_error,
            failed_at=d.finished_at,
        )


class FailurePage(BaseModel):
    items: list[FailureRead]
    next: str | None


class RedeliveryRead(BaseModel):
    delivery_id: int
    event_id: str
    state: str


class AttemptRead(BaseModel):
    id: int
    event_id: str
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    outcome: str

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptRead:
        return cls(
            id=a.id,
            event_id=f"evt_{a.event_id}",
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            duration_ms=a.duration_ms,
            error=a.error,
            outcome=a.outcome,
        )


class AttemptPage(BaseModel):
    items: list[AttemptRead]
    next: str | None


class ReplayIn(BaseModel):
    after: str | None = Field(default=None, description="A cursor from GET /events; none: all")


class ReplayRead(BaseModel):
    queued: int
    next: str | None = Field(description="Replay again from here: more events remain")


class EventPage(BaseModel):
    """Events shaped as the webhooks carry them: ``{"type", "timestamp", "data"}``."""

    items: list[dict[str, Any]]
    next: str | None
