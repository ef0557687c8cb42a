"""Delivering events as signed webhooks (Standard Webhooks), in order, with retries.

One run: fan out new events, lease the subscriptions whose oldest pending delivery
is due (``FOR UPDATE SKIP LOCKED`` on PostgreSQL and a guarded update everywhere,
so two deliverers never serve one subscription at once), then send each leased
subscription's deliveries one after another. While the oldest one fails, later
ones wait; one that fails for good becomes a dead letter and the queue moves on.
No database transaction is open during an HTTP call: each send reads in one short
transaction and records its attempt in another.

Every attempt resolves the endpoint's host again, checks every address (as at
registration: DNS answers can change, e.g. rebinding to 10.x or 169.254.169.254) and
connects to the checked address only (``endpoints.pin``). A refused address is a
failed attempt like any other (error class ``unsafe_endpoint``, nothing sent), retried
on the usual schedule.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx2
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, aliased
from standardwebhooks import Webhook

from sscard import __version__
from sscard.db.engine import is_postgres
from sscard.events import endpoints
from sscard.events.endpoints import Resolver, Target
from sscard.events.fanout import fan_out
from sscard.events.model import (
    Event,
    Outcome,
    UnsafeEndpoint,
    body_of,
    outcome,
    partner_payload,
    retry_delay,
    unix_seconds,
    webhook_id,
)
from sscard.events.outbox import DEAD, DELIVERED, PENDING
from sscard.events.tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from sscard.register.model import OrgKind
from sscard.register.tables import Organization
from sscard.runtime import Runtime

log = logging.getLogger("sscard.events")
LEASE = timedelta(minutes=2)  # renewed after every attempt
TIMEOUT = httpx2.Timeout(10.0, connect=3.0)
_jitter = random.SystemRandom()


@dataclass
class DeliveryReport:
    fanned_out: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {o.value: 0 for o in Outcome},
    )

    def add(self, result: Outcome) -> None:
        self.counts[result.value] += 1


def new_client() -> httpx2.Client:
    """The HTTP client of the deliverer: short timeouts, no redirects followed."""
    return httpx2.Client(timeout=TIMEOUT, follow_redirects=False)


def deliver(
    rt: Runtime,
    *,
    client: httpx2.Client | None = None,
    subscriptions: int = 100,
    per_subscription: int = 100,
    fan_out_batch: int = 1000,
    allow_loopback: bool | None = None,
    resolver: Resolver | None = None,
) -> DeliveryReport:
    """Fan out new events and send what is due, once (the server's thread repeats it).

    ``allow_loopback`` (default: ``SSCARD_WEBHOOK_ALLOW_LOOPBACK``) lets endpoints on
    127.0.0.1 through; ``resolver`` (default: ``endpoints.resolve``) resolves hosts."""
    report = DeliveryReport()
    reach = _Reach(
        allow_loopback=endpoints.loopback_allowed() if allow_loopback is None else allow_loopback,
        resolver=resolver,
    )
    while True:
        with rt.uow() as uow:
            done = fan_out(uow.session, rt.now(), fan_out_batch)
            uow.commit()
        report.fanned_out += done
        if done < fan_out_batch:
            break
    owner = uuid.uuid4().hex
    own_client = client is None
    http = client or new_client()
    try:
        for sub_id in _lease(rt, owner, subscriptions):
            try:
                _serve(rt, http, reach, sub_id, owner, per_subscription, report)
            finally:
                _release(rt, sub_id, owner)
    finally:
        if own_client:
            http.close()
    if any(report.counts.values()):
        log.info("webhooks %s", {k: v for k, v in report.counts.items() if v})
    return report


def _lease(rt: Runtime, owner: str, limit: int) -> list[int]:
    """Lease the active subscriptions whose oldest pending delivery is due."""
    now = rt.now()
    queued = aliased(WebhookDelivery)
    head = (
        select(func.min(queued.id))
        .where(queued.subscription_id == WebhookSubscription.id, queued.state == PENDING)
        .correlate(WebhookSubscription)
        .scalar_subquery()
    )
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.id == head, WebhookDelivery.next_attempt_at <= now)
        .correlate(WebhookSubscription)
        .exists()
    )
    free = or_(WebhookSubscription.lease_until.is_(None), WebhookSubscription.lease_until < now)
    with rt.uow() as uow:
        s = uow.session
        q = (
            select(WebhookSubscription.id)
            .where(WebhookSubscription.state == "active", free, due)
            .order_by(WebhookSubscription.id)
            .limit(limit)
        )
        if is_postgres(s):
            q = q.with_for_update(skip_locked=True)
        ids = list(s.scalars(q))
        if not ids:
            return []
        leased = s.scalars(
            update(WebhookSubscription)
            .where(WebhookSubscription.id.in_(ids), free)
            .values(lease_owner=owner, lease_until=now + LEASE)
            .returning(WebhookSubscription.id)
            .execution_options(synchronize_session=False)
        ).all()
        uow.commit()
    return sorted(leased)


def _release(rt: Runtime, sub_id: int, owner: str) -> None:
    with rt.uow() as uow:
        uow.session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == sub_id, WebhookSubscription.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        uow.commit()


@dataclass(frozen=True, slots=True)
class _Request:
    delivery_id: int
    event_id: int
    attempts: int
    url: str
    body: str
    headers: dict[str, str]


def _next_request(s: Session, rt: Runtime, sub_id: int, owner: str) -> _Request | None:
    """The subscription's oldest pending delivery, signed, if it is due and still ours."""
    now = rt.now()
    sub = s.get(WebhookSubscription, sub_id)
    if sub is None or sub.state != "active" or sub.lease_owner != owner:
        return None
    row = s.execute(
        select(WebhookDelivery, OutboxEvent, Organization.kind)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .join(Organization, Organization.id == sub.org_id)
        .where(WebhookDelivery.subscription_id == sub_id, WebhookDelivery.state == PENDING)
        .order_by(WebhookDelivery.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    delivery, ev, kind = row
    if delivery.next_attempt_at > now:
        return None
    data = partner_payload(
        OrgKind(kind),
        Event(
            id=ev.id,
            seq=ev.seq,
            type=ev.type,
            occurred_at=ev.occurred_at.astimezone(rt.tz),
            subject_type=ev.subject_type,
            subject_id=ev.subject_id,
            person_id=ev.person_id,
            detail=ev.detail,
        ),
    )
    body = json.dumps(
        body_of(ev.type, ev.occurred_at.astimezone(rt.tz), data),
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return _Request(
        delivery_id=delivery.id,
        event_id=ev.id,
        attempts=delivery.attempts,
        url=sub.url,
        body=body,
        headers=signed_headers(webhook_id(ev.id), now, body, [sub.secret, *_still_valid(sub, now)]),
    )


def _still_valid(sub: WebhookSubscription, now: datetime) -> list[str]:
    """The previous secret during its grace period after a rotation."""
    if sub.previous_secret and sub.previous_secret_until and sub.previous_secret_until > now:
        return [sub.previous_secret]
    return []


def signed_headers(msg_id: str, at: datetime, body: str, secrets: list[str]) -> dict[str, str]:
    """Standard Webhooks headers; one ``v1,`` signature per secret (rotation overlap)."""
    # The library reads the timestamp as UTC whatever its zone: hand it a UTC one.
    stamp = datetime.fromtimestamp(unix_seconds(at), UTC)
    signatures = " ".join(Webhook(secret).sign(msg_id, stamp, body) for secret in secrets)
    return {
        "content-type": "application/json",
        "user-agent": f"sscard-webhooks/{__version__}",
        "webhook-id": msg_id,
        "webhook-timestamp": str(unix_seconds(at)),
        "webhook-signature": signatures,
    }


@dataclass(frozen=True, slots=True)
class _Reach:
    """How endpoints are resolved and which addresses may be reached, for one run."""

    allow_loopback: bool
    resolver: Resolver | None


UNSAFE = "unsafe_endpoint"  # the error class of an attempt refused before sending


def _send(
    http: httpx2.Client, reach: _Reach, request: _Request
) -> tuple[int | None, str | None, int]:
    """Resolve and check the endpoint now, then POST to the checked address only. A
    refused address sends nothing and records only ``unsafe_endpoint`` (no address,
    no timing: the attempts page must not probe the internal network)."""
    try:
        target = endpoints.pin(
            request.url, allow_loopback=reach.allow_loopback, resolver=reach.resolver
        )
    except UnsafeEndpoint:
        return None, UNSAFE, 0
    return _post(http, request, target)


def _post(
    http: httpx2.Client, request: _Request, target: Target
) -> tuple[int | None, str | None, int]:
    """POST once to the pinned target: (status, error class, milliseconds). Never raises
    for the partner's faults; the error is a class name only (no message, URL or secret)."""
    headers = {**request.headers, "host": target.host_header}
    extensions: dict[str, object] = {}
    if target.sni_hostname is not None:
        # TLS to the checked IP, but SNI and certificate verification on the name.
        extensions["sni_hostname"] = target.sni_hostname
        # The pool keys connections by IP: never hand this one to another host name.
        headers["connection"] = "close"
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        response = http.post(
            target.url, content=request.body.encode(), headers=headers, extensions=extensions
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"http_{status}"
    except httpx2.TimeoutException:
        error = "timeout"
    except httpx2.HTTPError as exc:
        error = type(exc).__name__
    return status, error, int((time.monotonic() - started) * 1000)


def _serve(
    rt: Runtime,
    http: httpx2.Client,
    reach: _Reach,
    sub_id: int,
    owner: str,
    limit: int,
    report: DeliveryReport,
) -> None:
    """Send the subscription's due deliveries in order until one has to wait."""
    for _ in range(limit):
        with rt.uow() as uow:  # a short read; closed before the HTTP call
            request = _next_request(uow.session, rt, sub_id, owner)
        if request is None:
            return
        status, error, duration = _send(http, reach, request)
        with rt.uow() as uow:
            result = _record(uow.session, rt, sub_id, owner, request, status, error, duration)
            if result is None:  # the lease was lost: someone else serves it now
                return
            uow.commit()
        report.add(result)
        if result is Outcome.RETRY:
            return


def _record(
    s: Session,
    rt: Runtime,
    sub_id: int,
    owner: str,
    request: _Request,
    status: int | None,
    error: str | None,
    duration: int,
) -> Outcome | None:
    """Record the attempt and move the delivery on; None if the lease is no longer ours."""
    now = rt.now()
    attempts = request.attempts + 1
    result = outcome(status, attempts)
    values: dict[str, object] = {"attempts": attempts, "last_status": status, "last_error": error}
    if result is Outcome.DELIVERED:
        values |= {"state": DELIVERED, "finished_at": now}
    elif result is Outcome.DEAD:
        values |= {"state": DEAD, "finished_at": now}
    else:
        delay = retry_delay(attempts, _jitter.random())
        assert delay is not None
        values["next_attempt_at"] = now + delay
    kept = s.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == sub_id, WebhookSubscription.lease_owner == owner)
        .values(lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    moved = s.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == request.delivery_id,
            WebhookDelivery.state == PENDING,
            WebhookDelivery.attempts == request.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not kept.rowcount or not moved.rowcount:  # type: ignore[attr-defined]
        return None
    s.add(
        WebhookAttempt(
            delivery_id=request.delivery_id,
            subscription_id=sub_id,
            event_id=request.event_id,
            attempted_at=now,
            status_code=status,
            duration_ms=duration,
            error=error,
            outcome=result.value,
        )
    )
    return result


class DeliveryThread(threading.Thread):
    """Runs the deliverer inside the server every ``interval`` seconds."""

    def __init__(self, rt: Runtime, interval: float, *, allow_loopback: bool | None = None) -> None:
        super().__init__(name="sscard-webhooks", daemon=True)
        self.rt = rt
        self.interval = interval
        self.allow_loopback = allow_loopback  # None: SSCARD_WEBHOOK_ALLOW_LOOPBACK
        self.stopped = threading.Event()

    def run(self) -> None:
        with new_client() as http:
            while not self.stopped.wait(self.interval):
                try:
                    deliver(self.rt, client=http, allow_loopback=self.allow_loopback)
                except Exception as exc:  # keep delivering; the next run retries
                    # Type and place only: a message could carry personal data.
                    tb = exc.__traceback__
                    frame = traceback.extract_tb(tb)[-1] if tb else None
                    where = f"{frame.filename}:{frame.lineno}" if frame else "?"
                    log.error(
                        "webhook delivery failed (%s at %s); retrying at the next interval",
                        type(exc).__name__,
                        where,
                    )

    def stop(self) -> None:
        self.stopped.set()
