"""Tables of partner events: the outbox, webhook subscriptions, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sscard.db.base import Base, BigId

REPLAY_SCOPES = (("bank", "bank_code"), ("unit", "unit_org_id"), ("actor", "actor_org_id"))


class OutboxEvent(Base):
    """One partner event, written in the same transaction as the change it reports.

    ``seq`` is given by the fan-out, which runs one at a time, in commit order: a
    change that commits late still gets a later ``seq``, so a cursor over ``seq``
    (replays, ``GET /events``) never skips an event, which ``id`` order could.
    ``bank_code`` and ``unit_org_id`` are the event's scope: taken from the audit
    detail when it names them, else resolved by the fan-out (one join per batch).
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    actor_org_id: Mapped[int | None] = mapped_column(BigId)
    bank_code: Mapped[str | None] = mapped_column(String(16))
    unit_org_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seq: Mapped[int | None] = mapped_column(BigId, unique=True)
    fanned_out_at: Mapped[datetime | None]

    __table_args__ = (
        # The fan-out's queue: only events not yet fanned out.
        Index(
            "ix_outbox_events_unfanned",
            "id",
            postgresql_where=text("fanned_out_at IS NULL"),
            sqlite_where=text("fanned_out_at IS NULL"),
        ),
        # Replay (GET /events) per party: a bank's, a unit's, an actor's events in order;
        # partial, as ``col = :party`` implies ``col IS NOT NULL`` (many events have no
        # unit, some no bank or acting organization).
        *(
            Index(
                f"ix_outbox_events_{name}_seq",
                column,
                "seq",
                postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"),
            )
            for name, column in REPLAY_SCOPES
        ),
        # Retention: BRIN on PostgreSQL, as events are written in time order.
        Index("ix_outbox_events_occurred_at", "occurred_at", postgresql_using="brin"),
    )


class WebhookSubscription(Base):
    """A partner's webhook endpoint; ``lease_*`` lets one deliverer at a time serve it."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(12))  # active | paused
    secret: Mapped[str] = mapped_column(String(64))
    previous_secret: Mapped[str | None] = mapped_column(String(64))
    previous_secret_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event owed to one subscription: pending, delivered, dead (a dead letter) or
    redelivered (a dead letter queued again). A subscription's deliveries go out in
    ``id`` order; the oldest pending one holds the later ones back."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_deliveries_sub_state", "subscription_id", "state", "id"),
        Index("ix_webhook_deliveries_state_id", "state", "id"),
    )


class WebhookAttempt(Base):
    """One HTTP attempt: status, duration and error class (never a message or secret)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(BigId)
    event_id: Mapped[int] = mapped_column(BigId)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(12))

    __table_args__ = (Index("ix_webhook_attempts_sub_id", "subscription_id", "id"),)
