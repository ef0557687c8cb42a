"""Fan-out, replay and retention of the outbox's events.

``fan_out`` resolves each batch's scope with one join (the card's or application's
bank, the person's unit) and queues one delivery per receiving subscription in one
INSERT; ``visible`` is the same S-1 rule in SQL, for replays; ``prune_events`` is
the retention job.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from sscard.applications.tables import Application, Batch
from sscard.cards.tables import Card
from sscard.db.counters import reserve
from sscard.db.engine import is_postgres
from sscard.events.model import (
    FAMILIES,
    Party,
    ReplayBacklog,
    Scope,
    audience,
    matches,
    party_keys,
    visible_to,
)
from sscard.events.outbox import DEAD, PENDING
from sscard.events.tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from sscard.register.model import OrgKind
from sscard.register.tables import Organization, Person


def _subscribers(s: Session) -> dict[tuple[str, object], list[tuple[int, Party, list[str]]]]:
    """Every subscription (paused ones too: they catch up when resumed), by audience key."""
    rows = s.execute(
        select(
            WebhookSubscription.id,
            WebhookSubscription.event_types,
            Organization.id,
            Organization.kind,
            Organization.bank_code,
        ).join(Organization, Organization.id == WebhookSubscription.org_id)
    ).all()
    by_key: dict[tuple[str, object], list[tuple[int, Party, list[str]]]] = {}
    for sub_id, types, org_id, kind, bank_code in rows:
        party = Party(kind=OrgKind(kind), org_id=org_id, bank_code=bank_code)
        for key in party_keys(party):
            by_key.setdefault(key, []).append((sub_id, party, list(types)))
    return by_key


SEQ = "outbox_seq"


def fan_out(s: Session, now: datetime, size: int) -> int:
    """Number a batch of new events in commit order, resolve their scope (one join) and
    queue their deliveries (one INSERT); returns how many events were fanned out.

    Fan-outs run one at a time: the first statement locks the ``outbox_seq`` counter
    until commit, so a second waits and then sees only what is left.
    """
    reserve(s, SEQ, 0)  # the lock; its block is reserved below, once the batch is known
    q = (
        select(
            OutboxEvent.id,
            OutboxEvent.type,
            OutboxEvent.subject_type,
            OutboxEvent.subject_id,
            OutboxEvent.actor_org_id,
            OutboxEvent.bank_code,
            OutboxEvent.unit_org_id,
            OutboxEvent.detail,
            Card.bank_code.label("card_bank"),
            Card.card_number,
            Card.serial,
            Application.form_number,
            Application.bank_code.label("application_bank"),
            Batch.bank_code.label("batch_bank"),
            Batch.unit_org_id.label("batch_unit"),
            Person.unit_org_id.label("person_unit"),
            Organization.kind.label("subject_org_kind"),
        )
        .outerjoin(
            Card, and_(OutboxEvent.subject_type == "card", Card.id == OutboxEvent.subject_id)
        )
        .outerjoin(
            Application,
            and_(
                OutboxEvent.subject_type == "application",
                Application.id == OutboxEvent.subject_id,
            ),
        )
        .outerjoin(
            Batch, and_(OutboxEvent.subject_type == "batch", Batch.id == OutboxEvent.subject_id)
        )
        .outerjoin(Person, Person.id == OutboxEvent.person_id)
        .outerjoin(
            Organization,
            and_(
                OutboxEvent.subject_type == "organization",
                Organization.id == OutboxEvent.subject_id,
            ),
        )
        .where(OutboxEvent.fanned_out_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(size)
    )
    rows = s.execute(q).all()
    if not rows:
        return 0
    first = reserve(s, SEQ, len(rows))
    subscribers = _subscribers(s)
    resolved: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for n, r in enumerate(rows):
        unit = r.unit_org_id or r.person_unit or r.batch_unit
        if unit is None and r.subject_org_kind == OrgKind.UNIT.value:
            unit = r.subject_id
        scope = Scope(
            type=r.type,
            bank_code=r.bank_code or r.card_bank or r.application_bank or r.batch_bank,
            unit_org_id=unit,
            actor_org_id=r.actor_org_id,
        )
        # The numbers a partner knows the record by (never an ID or bank card number).
        known = {"card_number": r.card_number, "serial": r.serial, "form_number": r.form_number}
        resolved.append(
            {
                "id": r.id,
                "detail": {**{k: v for k, v in known.items() if v is not None}, **r.detail},
                "bank_code": scope.bank_code,
                "unit_org_id": scope.unit_org_id,
                "seq": first + n,
                "fanned_out_at": now,
            }
        )
        receivers: set[int] = set()
        for key in audience(scope):
            for sub_id, party, types in subscribers.get(key, ()):
                if sub_id not in receivers and matches(types, r.type) and visible_to(party, scope):
                    receivers.add(sub_id)
        deliveries.extend(_pending(sub_id, r.id, now) for sub_id in sorted(receivers))
    s.execute(update(OutboxEvent), resolved)
    if deliveries:
        s.execute(insert(WebhookDelivery), deliveries)
    return len(rows)


def _pending(subscription_id: int, event_id: int, now: datetime) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "event_id": event_id,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


# ------------------------------------------------------------------ replay


def visible(party: Party) -> ColumnElement[bool]:
    """:func:`sscard.events.model.visible_to` as a SQL condition on fanned-out events."""
    families = FAMILIES.get(party.kind, frozenset())
    fanned = OutboxEvent.seq.is_not(None)
    if families is None:
        return fanned
    if not families:
        return and_(fanned, ~true())
    of_family = or_(*(OutboxEvent.type.like(f"{f}.%") for f in sorted(families)))
    own = [OutboxEvent.actor_org_id == party.org_id]
    if party.kind in (OrgKind.BANK, OrgKind.OUTLET) and party.bank_code:
        own.append(OutboxEvent.bank_code == party.bank_code)
    if party.kind is OrgKind.UNIT:
        own.append(OutboxEvent.unit_org_id == party.org_id)
    return and_(fanned, of_family, or_(*own))


# A replay is refused while this many of the subscription's deliveries are pending,
# and never queues past it: replays cannot flood ``webhook_deliveries``.
MAX_PENDING = 10_000


def pending_count(s: Session, subscription_id: int, cap: int) -> int:
    """How many of the subscription's deliveries are pending, counted up to ``cap``."""
    ids = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.state == PENDING)
        .limit(cap)
        .subquery()
    )
    return int(s.scalar(select(func.count()).select_from(ids)) or 0)


def queue_replay(
    s: Session,
    *,
    subscription: WebhookSubscription,
    party: Party,
    after: int,
    now: datetime,
    limit: int,
    max_pending: int | None = None,
) -> tuple[int, int | None]:
    """Queue deliveries of the party's events after the sequence number ``after`` (at
    most ``limit`` events looked at); the count queued and, when there are more, the
    last sequence number looked at.

    Events already pending for the subscription are skipped (one set-based NOT
    EXISTS), and the subscription's queue never grows past ``max_pending``: a replay
    while it is full is refused (``replay_backlog``), a replay near it looks at fewer
    events and answers the cursor to ask again with."""
    max_pending = MAX_PENDING if max_pending is None else max_pending
    pending = pending_count(s, subscription.id, max_pending)
    room = max_pending - pending
    if room <= 0:
        raise ReplayBacklog(
            f"webhook {subscription.id} already has {pending} or more deliveries pending; "
            "let them be delivered (resume the webhook if it is paused, or fix the endpoint "
            "if they fail), then ask again with the same cursor",
            pending=pending,
            max_pending=max_pending,
        )
    limit = min(limit, room)
    queued_already = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.event_id == OutboxEvent.id,
            WebhookDelivery.state == PENDING,
        )
        .exists()
    )
    rows = s.execute(
        select(OutboxEvent.id, OutboxEvent.seq, OutboxEvent.type)
        .where(visible(party), OutboxEvent.seq > after, ~queued_already)
        .order_by(OutboxEvent.seq)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    queued = [
        _pending(subscription.id, r.id, now)
        for r in rows
        if matches(subscription.event_types, r.type)
    ]
    if queued:
        s.execute(insert(WebhookDelivery), queued)
    return len(queued), (rows[-1].seq if more and rows else None)


# ------------------------------------------------------------------ retention


def retention() -> timedelta:
    """How long delivered events stay for replay: ``SSCARD_EVENT_RETENTION_DAYS`` (30)."""
    return timedelta(days=float(os.environ.get("SSCARD_EVENT_RETENTION_DAYS", "30") or 30))


def prune_events(s: Session, now: datetime, size: int) -> int:
    """Forget events older than the retention period that nobody still waits for (no
    pending delivery, no dead letter), with their deliveries and attempts."""
    waiting = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.event_id == OutboxEvent.id,
            WebhookDelivery.state.in_((PENDING, DEAD)),
        )
        .exists()
    )
    q = (
        select(OutboxEvent.id)
        .where(
            OutboxEvent.occurred_at < now - retention(),
            OutboxEvent.fanned_out_at.is_not(None),
            ~waiting,
        )
        .order_by(OutboxEvent.id)
        .limit(size)
    )
    if is_postgres(s):
        q = q.with_for_update(skip_locked=True)
    ids = list(s.scalars(q))
    if not ids:
        return 0
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(ids))
    s.execute(
        delete(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(deliveries))
        .execution_options(synchronize_session=False)
    )
    s.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.event_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    s.execute(
        delete(OutboxEvent)
        .where(OutboxEvent.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    return len(ids)
