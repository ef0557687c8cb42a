"""Webhook subscriptions of partner organizations, their failures, attempts and replays.

Every use case is scoped to the caller's own organization; the center also sees
and redelivers every dead letter. Each state change is one transaction with its
audit record (``webhook.*`` changes are internal: they make no partner event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, require
from sscard.audit.service import record
from sscard.core.errors import Forbidden, IllegalTransition, NotFound
from sscard.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from sscard.db.engine import UnitOfWork, is_postgres
from sscard.db.paging import page_by_id
from sscard.events import endpoints
from sscard.events.endpoints import Resolver
from sscard.events.fanout import queue_replay, visible
from sscard.events.model import (
    Event,
    Party,
    body_of,
    check_event_types,
    new_secret,
    partner_payload,
)
from sscard.events.outbox import DEAD, PENDING, REDELIVERED
from sscard.events.tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from sscard.register.model import OrgKind
from sscard.runtime import Runtime

ROTATION_GRACE = timedelta(hours=24)  # the old secret still signs, beside the new one
MAX_REPLAY = 10_000  # events looked at per replay request; ask again with ``next``


def party_of(actor: Actor) -> Party:
    """The receiving party an actor speaks for: its organization."""
    if actor.org_id is None:
        raise Forbidden("webhooks and events belong to an organization; act as its staff")
    return Party(kind=actor.org_kind, org_id=actor.org_id, bank_code=actor.bank_code)


def _audit(
    uow: UnitOfWork, *, actor: Actor, at: datetime, action: str, sub: WebhookSubscription
) -> None:
    record(
        uow.session,
        actor=actor,
        at=at,
        action=f"webhook.{action}",
        subject_type="webhook_subscription",
        subject_id=sub.id,
        channel=actor.org_kind.value,
        detail={"host": urlsplit(sub.url).hostname, "state": sub.state},
    )


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription: WebhookSubscription
    secret: str  # shown once


def subscribe(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    url: str,
    event_types: list[str],
    allow_loopback: bool = False,
    resolver: Resolver | None = None,
) -> Subscribed:
    """Register a webhook endpoint for the caller's organization; answers its secret once.

    The host must resolve, and to safe addresses only (``unsafe_endpoint``); the
    deliverer checks again at every attempt, since DNS answers can change."""
    require(actor, "webhooks.manage")
    party = party_of(actor)
    checked = url.strip()
    endpoints.pin(checked, allow_loopback=allow_loopback, resolver=resolver)
    types = check_event_types(event_types)
    secret = new_secret()
    now = rt.now()
    sub = WebhookSubscription(
        org_id=party.org_id,
        url=checked,
        event_types=types,
        state="active",
        secret=secret,
        created_at=now,
    )
    uow.session.add(sub)
    uow.session.flush()
    _audit(uow, actor=actor, at=now, action="subscribed", sub=sub)
    uow.commit()
    return Subscribed(subscription=sub, secret=secret)


def subscriptions(s: Session, *, actor: Actor) -> list[WebhookSubscription]:
    """The caller's organization's subscriptions."""
    require(actor, "webhooks.manage")
    party = party_of(actor)
    return list(
        s.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.org_id == party.org_id)
            .order_by(WebhookSubscription.id)
        )
    )


def get_subscription(s: Session, *, actor: Actor, subscription_id: int) -> WebhookSubscription:
    """One of the caller's organization's subscriptions (another's is not found)."""
    require(actor, "webhooks.manage")
    sub = s.get(WebhookSubscription, subscription_id)
    if sub is None or sub.org_id != party_of(actor).org_id:
        raise NotFound(f"webhook {subscription_id} is not one of your organization's")
    return sub


def set_paused(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, subscription_id: int, paused: bool
) -> WebhookSubscription:
    """Pause (events keep queueing) or resume (the queue is delivered in order) a webhook."""
    sub = get_subscription(uow.session, actor=actor, subscription_id=subscription_id)
    target = "paused" if paused else "active"
    if sub.state == target:
        raise IllegalTransition(
            f"webhook {sub.id}",
            sub.state,
            "pause" if paused else "resume",
            ["resume" if paused else "pause"],
        )
    sub.state = target
    _audit(uow, actor=actor, at=rt.now(), action=target, sub=sub)
    uow.commit()
    return sub


def rotate_secret(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, subscription_id: int
) -> Subscribed:
    """A new signing secret, shown once; the old one also signs for 24 hours."""
    sub = get_subscription(uow.session, actor=actor, subscription_id=subscription_id)
    now = rt.now()
    sub.previous_secret, sub.previous_secret_until = sub.secret, now + ROTATION_GRACE
    sub.secret = new_secret()
    _audit(uow, actor=actor, at=now, action="secret_rotated", sub=sub)
    uow.commit()
    return Subscribed(subscription=sub, secret=sub.secret)


def unsubscribe(uow: UnitOfWork, rt: Runtime, *, actor: Actor, subscription_id: int) -> None:
    """Delete a webhook with its queue, dead letters and attempts."""
    s = uow.session
    sub = get_subscription(s, actor=actor, subscription_id=subscription_id)
    _audit(uow, actor=actor, at=rt.now(), action="deleted", sub=sub)
    for table in (WebhookAttempt, WebhookDelivery):
        s.execute(
            delete(table)
            .where(table.subscription_id == sub.id)
            .execution_options(synchronize_session=False)
        )
    s.delete(sub)
    uow.commit()


def _failures_of(s: Session, *, actor: Actor, subscription_id: int) -> WebhookSubscription:
    """A webhook whose dead letters the actor may see: its own, or any for the center."""
    if actor.org_kind is not OrgKind.CENTER:
        return get_subscription(s, actor=actor, subscription_id=subscription_id)
    require(actor, "webhooks.failures.all")
    sub = s.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"there is no webhook {subscription_id}")
    return sub


def failures(
    s: Session,
    *,
    actor: Actor,
    subscription_id: int | None,
    after: str | None,
    limit: int,
) -> Page[WebhookDelivery]:
    """Dead letters of one webhook, or (the center, without a webhook) of every one."""
    q = select(WebhookDelivery).where(WebhookDelivery.state == DEAD)
    if subscription_id is None:
        require(actor, "webhooks.failures.all")
    else:
        _failures_of(s, actor=actor, subscription_id=subscription_id)
        q = q.where(WebhookDelivery.subscription_id == subscription_id)
    return page_by_id(s, q, WebhookDelivery.id, after=after, limit=limit)


def redeliver(
    uow: UnitOfWork, rt: Runtime, *, actor: Actor, subscription_id: int, failure_id: int
) -> WebhookDelivery:
    """Queue a dead letter again (behind the webhook's current queue)."""
    s = uow.session
    sub = _failures_of(s, actor=actor, subscription_id=subscription_id)
    dead = s.get(WebhookDelivery, failure_id)
    if dead is None or dead.subscription_id != subscription_id:
        raise NotFound(f"webhook {subscription_id} has no failure {failure_id}")
    if dead.state != DEAD:
        raise IllegalTransition(f"failure {failure_id}", dead.state, "redeliver", [])
    now = rt.now()
    dead.state = REDELIVERED
    again = WebhookDelivery(
        subscription_id=subscription_id,
        event_id=dead.event_id,
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    s.add(again)
    _audit(uow, actor=actor, at=now, action="redelivery_queued", sub=sub)
    uow.commit()
    return again


def attempts(
    s: Session, *, actor: Actor, subscription_id: int, after: str | None, limit: int
) -> Page[WebhookAttempt]:
    """A webhook's delivery attempts, oldest first, by cursor."""
    get_subscription(s, actor=actor, subscription_id=subscription_id)
    q = select(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription_id)
    return page_by_id(s, q, WebhookAttempt.id, after=after, limit=limit)


def replay(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    subscription_id: int,
    after: str | None,
    limit: int = MAX_REPLAY,
) -> tuple[int, str | None]:
    """Queue the webhook's events after the cursor again; (queued, next cursor if more).

    Events still pending for the webhook are not queued twice, and a replay is refused
    (409 ``replay_backlog``) while the webhook's queue is full. Replays of one webhook
    run one at a time (its row is locked), so two cannot both pass those checks."""
    s = uow.session
    sub = get_subscription(s, actor=actor, subscription_id=subscription_id)
    if is_postgres(s):
        s.execute(
            select(WebhookSubscription.id).where(WebhookSubscription.id == sub.id).with_for_update()
        )
    queued, last = queue_replay(
        s,
        subscription=sub,
        party=party_of(actor),
        after=decode_cursor(after),
        now=rt.now(),
        limit=limit,
    )
    _audit(uow, actor=actor, at=rt.now(), action="replay_queued", sub=sub)
    uow.commit()
    return queued, encode_cursor(last) if last is not None else None


def shaped(rt: Runtime, party: Party, ev: OutboxEvent) -> dict[str, Any]:
    """An event as the party's webhook body carries it."""
    at = ev.occurred_at.astimezone(rt.tz)
    data = partner_payload(
        party.kind,
        Event(
            id=ev.id,
            seq=ev.seq,
            type=ev.type,
            occurred_at=at,
            subject_type=ev.subject_type,
            subject_id=ev.subject_id,
            person_id=ev.person_id,
            detail=ev.detail,
        ),
    )
    return body_of(ev.type, at, data)


def events(
    s: Session, rt: Runtime, *, actor: Actor, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The caller's organization's visible events after the cursor, in order (replay)."""
    require(actor, "events.read")
    party = party_of(actor)
    check_limit(limit)
    page = page_by_id(
        s, select(OutboxEvent).where(visible(party)), OutboxEvent.seq, after=after, limit=limit
    )
    return [shaped(rt, party, ev) for ev in page.items], page.next
