"""Partner events on both backends: the outbox, scope, payloads, delivery, dead letters."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx2
import pytest
from sqlalchemy import event, func, select, update
from standardwebhooks import Webhook

from sscard.access.model import SYSTEM
from sscard.audit.model import AuditKind
from sscard.audit.service import record, record_many
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.core.errors import DomainError, IllegalTransition
from sscard.core.pagination import encode_cursor
from sscard.events import endpoints, fanout, service
from sscard.events.delivery import deliver
from sscard.events.fanout import fan_out
from sscard.events.model import JITTER, MAX_ATTEMPTS, SCHEDULE
from sscard.events.tables import (
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from sscard.jobs.sweeper import sweep
from sscard.register import service as register
from sscard.register.model import OrgKind
from tests.conftest import personal_numbers
from tests.events_receiver import receiver
from tests.factories import World

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers listen on 127.0.0.1, and the deliverer checks every attempt."""
    monkeypatch.setenv("SSCARD_WEBHOOK_ALLOW_LOOPBACK", "1")


def _events(world: World, **where: object) -> list[OutboxEvent]:
    with world.rt.uow() as uow:
        q = select(OutboxEvent).order_by(OutboxEvent.id)
        for name, value in where.items():
            q = q.where(getattr(OutboxEvent, name) == value)
        return list(uow.session.scalars(q))


def _count(world: World) -> int:
    with world.rt.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def _subscribe(
    world: World, kind: OrgKind, url: str, types: list[str] | None = None, bank: str | None = None
) -> service.Subscribed:
    actor = world.actor(kind, bank)
    with world.rt.uow() as uow:
        return service.subscribe(
            uow, world.rt, actor=actor, url=url, event_types=types or ["*"], allow_loopback=True
        )


def _deliveries(world: World, sub_id: int) -> list[tuple[WebhookDelivery, OutboxEvent]]:
    with world.rt.uow() as uow:
        rows = uow.session.execute(
            select(WebhookDelivery, OutboxEvent)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == sub_id)
            .order_by(WebhookDelivery.id)
        ).all()
        return [(d, e) for d, e in rows]


def _fan_out(world: World) -> None:
    with world.rt.uow() as uow:
        fan_out(uow.session, world.rt.now(), 10_000)
        uow.commit()


def _real_time(world: World) -> None:
    """Receivers check the signature's timestamp against their own clock."""
    world.clock.set(datetime.now(SHANGHAI))


def _wait(attempt: int) -> timedelta:
    """Past the longest jittered wait after ``attempt`` failures."""
    return SCHEDULE[attempt - 1] * (1 + JITTER) + timedelta(seconds=1)


# ------------------------------------------------------------------ the outbox


def test_outbox_every_card_move_commits_its_event_with_the_change(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    types = [e.type for e in _events(world, subject_type="card", subject_id=card.id)]
    assert types == ["card.ordered", "card.produced", "card.picked_up", "card.activated"]
    activated = _events(world, type="card.activated")[-1]
    assert activated.person_id == card.person_id
    assert activated.detail["from"] == "received"
    assert activated.detail["to"] == "active"
    assert not personal_numbers(repr([e.detail for e in _events(world)]))


def test_outbox_a_refused_state_change_leaves_no_event(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    before = _count(world)
    outlet = world.actor(OrgKind.OUTLET)
    with pytest.raises(IllegalTransition), world.rt.uow() as uow:
        cards.activate(uow, world.rt, actor=outlet, card_id=card.id, channel="outlet")
    assert _count(world) == before


def test_outbox_an_uncommitted_change_rolls_its_event_back(world: World) -> None:
    before = _count(world)
    with world.rt.uow() as uow:
        record(
            uow.session,
            actor=SYSTEM,
            at=world.rt.now(),
            action="card.activate",
            subject_type="card",
            subject_id=None,
        )
        uow.session.flush()
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent)) == before + 1
    assert _count(world) == before


def test_outbox_set_based_sweeper_moves_write_their_events(world: World) -> None:
    card = world.card(CardState.LOST_ORAL)
    world.advance(days=6)
    sweep(world.rt)
    lapsed = _events(world, type="card.oral_loss_report_lapsed")
    assert [e.subject_id for e in lapsed] == [card.id]
    # the bank's account thawed in the same batch: its event names its bank
    assert _events(world, type="bank_account.unfrozen")[-1].bank_code == "ICBC"


def test_outbox_reads_are_not_events(world: World) -> None:
    before = _count(world)
    with world.rt.uow() as uow:
        for kind in (AuditKind.INQUIRY, AuditKind.DISCLOSURE):
            record(
                uow.session,
                actor=SYSTEM,
                at=world.rt.now(),
                action="person.read",
                subject_type="person",
                subject_id=1,
                kind=kind,
            )
        uow.commit()
    assert _count(world) == before


# ------------------------------------------------------------------ who receives what


def test_s1_a_banks_webhook_never_gets_another_banks_card_events(world: World) -> None:
    icbc = _subscribe(world, OrgKind.BANK, "http://127.0.0.1:9/icbc", ["card.*"], bank="ICBC")
    ccb = _subscribe(world, OrgKind.BANK, "http://127.0.0.1:9/ccb", ["card.*"], bank="CCB")
    mine, theirs = world.card(CardState.RECEIVED), world.card(CardState.RECEIVED, bank="CCB")
    _fan_out(world)
    got = _deliveries(world, icbc.subscription.id)
    assert got
    assert {e.subject_id for _, e in got} == {mine.id}
    assert {e.subject_id for _, e in _deliveries(world, ccb.subscription.id)} == {theirs.id}


def test_s1_a_units_webhook_gets_only_its_own_peoples_events(world: World) -> None:
    unit, other = world.unit(), world.unit()
    ours, theirs = world.person(unit=unit), world.person(unit=other)
    sp = world.actor(OrgKind.SERVICE_POINT)
    for person in (ours, theirs):
        with world.rt.uow() as uow:
            register.add_person_record(
                uow, world.rt, actor=sp, person_id=person.id, kind="qualification", title="电工"
            )
    actor = world.unit_actor(unit)
    with world.rt.uow() as uow:
        sub = service.subscribe(
            uow,
            world.rt,
            actor=actor,
            url="http://127.0.0.1:9/u",
            event_types=["*"],
            allow_loopback=True,
        ).subscription
    _fan_out(world)
    got = _deliveries(world, sub.id)
    assert got
    assert {e.person_id for _, e in got} == {ours.id}


def test_s1_replay_answers_each_party_its_visible_events_with_its_fields(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    _fan_out(world)
    with world.rt.uow() as uow:
        s = uow.session
        center, _ = service.events(
            s, world.rt, actor=world.actor(OrgKind.CENTER), after=None, limit=500
        )
        bank, _ = service.events(
            s, world.rt, actor=world.actor(OrgKind.BANK, "ICBC"), after=None, limit=500
        )
        other, _ = service.events(
            s, world.rt, actor=world.actor(OrgKind.BANK, "CCB"), after=None, limit=500
        )
        pharmacy, _ = service.events(
            s, world.rt, actor=world.actor(OrgKind.PHARMACY), after=None, limit=500
        )
    assert other == []
    assert pharmacy == []
    assert {e["type"] for e in bank} >= {"card.activated", "bank_account.opened"}
    assert all(e["data"]["subject"]["id"] == card.id for e in bank if e["type"].startswith("card."))
    activated = next(e for e in bank if e["type"] == "card.activated")["data"]["detail"]
    assert (activated["card_number"], activated["serial"]) == (card.card_number, card.serial)
    assert {e["type"] for e in center} >= {"application.issued", "card.activated"}
    issued = next(e for e in center if e["type"] == "application.issued")
    assert "bank_code" in issued["data"]["detail"]
    assert all(set(e) == {"type", "timestamp", "data"} for e in bank)


def test_s1_a_hospital_hears_of_a_card_once_presented_to_it(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    hospital = world.actor(OrgKind.HOSPITAL)
    with world.rt.uow() as uow:
        cards.activate(
            uow,
            world.rt,
            actor=hospital,
            card_id=card.id,
            channel="hospital",
            card_number=card.card_number,
        )
    _fan_out(world)
    with world.rt.uow() as uow:
        seen, _ = service.events(uow.session, world.rt, actor=hospital, after=None, limit=100)
    assert [e["type"] for e in seen] == ["card.activated"]
    assert "person_id" not in seen[0]["data"]
    # the card's number, which the hospital read from it; not the chip serial
    assert seen[0]["data"]["detail"]["card_number"] == card.card_number
    assert "serial" not in seen[0]["data"]["detail"]


# ------------------------------------------------------------------ delivery


def test_done_when_a_partner_down_for_a_while_gets_every_event_once_in_order_signed(
    world: World,
) -> None:
    with receiver(status=503) as partner:
        sub = _subscribe(world, OrgKind.BANK, partner.url, ["card.*"], bank="ICBC")
        world.cards(2, CardState.ACTIVE)
        expected = [
            f"evt_{e.id}" for e in _events(world, bank_code=None) if e.type.startswith("card.")
        ]
        _real_time(world)
        for failed in range(1, 4):
            deliver(world.rt)
            assert len(partner.requests) == failed  # the oldest is retried; later ones wait
            world.clock.advance(_wait(failed))
        assert {r.headers["webhook-id"] for r in partner.requests} == {expected[0]}
        partner.status = 204
        deliver(world.rt)
        delivered = partner.delivered()
        assert [r.headers["webhook-id"] for r in delivered] == expected
        bodies = partner.verified(sub.secret)
        assert [b["data"]["id"] for b in bodies] == expected  # type: ignore[index]
        deliver(world.rt)
        assert len(partner.delivered()) == len(expected)  # exactly once


def test_a_partner_not_listening_is_retried_like_one_answering_503(world: World) -> None:
    with receiver() as partner:
        url = partner.url
    sub = _subscribe(world, OrgKind.BANK, url, ["card.activated"], bank="ICBC")
    world.card(CardState.ACTIVE)
    report = deliver(world.rt)
    assert report.counts["retry"] == 1
    with world.rt.uow() as uow:
        page = service.attempts(
            uow.session,
            actor=world.actor(OrgKind.BANK, "ICBC"),
            subscription_id=sub.subscription.id,
            after=None,
            limit=10,
        )
    assert page.items[0].status_code is None
    assert page.items[0].error == "ConnectError"


def test_a_delivery_failing_for_good_is_a_dead_letter_and_can_be_redelivered(world: World) -> None:
    bank = world.actor(OrgKind.BANK, "ICBC")
    with receiver(status=500) as partner:
        sub = _subscribe(world, OrgKind.BANK, partner.url, ["card.activated"], bank="ICBC")
        world.card(CardState.ACTIVE)
        for failed in range(1, MAX_ATTEMPTS + 1):
            deliver(world.rt)
            if failed <= len(SCHEDULE):
                world.clock.advance(_wait(failed))
        assert len(partner.requests) == MAX_ATTEMPTS
        with world.rt.uow() as uow:
            dead = service.failures(
                uow.session, actor=bank, subscription_id=sub.subscription.id, after=None, limit=10
            ).items
            everyone = service.failures(
                uow.session,
                actor=world.actor(OrgKind.CENTER),
                subscription_id=None,
                after=None,
                limit=10,
            ).items
        assert [(d.attempts, d.last_status, d.last_error) for d in dead] == [
            (MAX_ATTEMPTS, 500, "http_500")
        ]
        assert [d.id for d in everyone] == [dead[0].id]
        # the cursor moved on: a later event goes out at once
        partner.status = 204
        world.card(CardState.ACTIVE)
        deliver(world.rt)
        assert len(partner.delivered()) == 1
        _real_time(world)
        with world.rt.uow() as uow:
            service.redeliver(
                uow,
                world.rt,
                actor=bank,
                subscription_id=sub.subscription.id,
                failure_id=dead[0].id,
            )
        with pytest.raises(IllegalTransition), world.rt.uow() as uow:
            service.redeliver(
                uow,
                world.rt,
                actor=bank,
                subscription_id=sub.subscription.id,
                failure_id=dead[0].id,
            )
        deliver(world.rt)
        again = partner.delivered()[-1]
        assert again.headers["webhook-id"] == partner.requests[0].headers["webhook-id"]
        assert Webhook(sub.secret).verify(again.body, again.headers)["type"] == "card.activated"


def test_410_gone_fails_for_good_at_once(world: World) -> None:
    with receiver(status=410) as partner:
        _subscribe(world, OrgKind.BANK, partner.url, ["card.activated"], bank="ICBC")
        world.card(CardState.ACTIVE)
        report = deliver(world.rt)
    assert report.counts["dead"] == 1
    assert len(partner.requests) == 1


def test_a_paused_webhook_keeps_its_queue_and_a_replay_sends_events_again(world: World) -> None:
    bank = world.actor(OrgKind.BANK, "ICBC")
    with receiver() as partner:
        sub = _subscribe(world, OrgKind.BANK, partner.url, ["card.*"], bank="ICBC").subscription
        with world.rt.uow() as uow:
            service.set_paused(uow, world.rt, actor=bank, subscription_id=sub.id, paused=True)
        world.card(CardState.RECEIVED)
        _real_time(world)
        deliver(world.rt)
        assert partner.requests == []
        with world.rt.uow() as uow:
            service.set_paused(uow, world.rt, actor=bank, subscription_id=sub.id, paused=False)
        deliver(world.rt)
        first = [r.headers["webhook-id"] for r in partner.delivered()]
        assert len(first) == 3
        with world.rt.uow() as uow:
            queued, more = service.replay(
                uow,
                world.rt,
                actor=bank,
                subscription_id=sub.id,
                after=encode_cursor(json.loads(partner.delivered()[0].body)["data"]["sequence"]),
            )
        assert (queued, more) == (2, None)
        deliver(world.rt)
        assert [r.headers["webhook-id"] for r in partner.delivered()] == first + first[1:]


def test_retention_prunes_delivered_events_but_keeps_dead_letters(world: World) -> None:
    with receiver(status=410) as partner:
        _subscribe(world, OrgKind.BANK, partner.url, ["card.activated"], bank="ICBC")
        world.card(CardState.ACTIVE)
        deliver(world.rt)
    kept = _events(world, type="card.activated")
    world.advance(days=31)
    sweep(world.rt)
    assert [e.id for e in _events(world)] == [e.id for e in kept]


def test_a_webhook_of_another_organization_is_not_found(world: World) -> None:
    sub = _subscribe(world, OrgKind.BANK, "http://127.0.0.1:9/x", bank="ICBC")
    with pytest.raises(DomainError) as refused, world.rt.uow() as uow:
        service.set_paused(
            uow,
            world.rt,
            actor=world.actor(OrgKind.BANK, "CCB"),
            subscription_id=sub.subscription.id,
            paused=True,
        )
    assert refused.value.code == "not_found"


def test_outbox_a_set_based_batch_costs_one_insert_for_all_its_events(world: World) -> None:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement.split(maxsplit=1)[0].upper())

    before = _count(world)
    with world.rt.uow() as uow:
        engine = uow.session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            record_many(
                uow.session,
                actor=SYSTEM,
                at=world.rt.now(),
                action="card.handout_overdue",
                subject_type="card",
                channel="system",
                entries=((n, None, {"unit_org_id": 7}) for n in range(1, 201)),
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        uow.commit()
    # the audit rows, then their events (the savepoint is the test's transaction); a
    # batch this big is one COPY each on PostgreSQL
    one = "COPY" if engine.dialect.name == "postgresql" else "INSERT"
    assert [st for st in statements if st != "SAVEPOINT"] == [one, one]
    assert _count(world) == before + 200
    assert {e.unit_org_id for e in _events(world, type="card.handout_overdue")} == {7}


# ------------------------------------------------------------------ endpoints


class _DNS:
    """The resolver seam (``endpoints.resolve``): tests cannot use real DNS."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.table: dict[str, list[str]] = {}
        self.asked: list[str] = []
        monkeypatch.setattr(endpoints, "resolve", self)

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        return list(self.table.get(host, []))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> _DNS:
    return _DNS(monkeypatch)


class _Capture:
    """An HTTP client whose transport records each request instead of sending it."""

    def __init__(self, status: int = 204) -> None:
        self.requests: list[httpx2.Request] = []
        self.client = httpx2.Client(transport=httpx2.MockTransport(self._answer))
        self.status = status

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(self.status)


def _bank_attempts(world: World, sub_id: int) -> list[WebhookAttempt]:
    with world.rt.uow() as uow:
        return list(
            service.attempts(
                uow.session,
                actor=world.actor(OrgKind.BANK, "ICBC"),
                subscription_id=sub_id,
                after=None,
                limit=100,
            ).items
        )


def test_a_host_that_does_not_resolve_is_refused_at_registration(
    world: World, dns: _DNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSCARD_WEBHOOK_ALLOW_LOOPBACK")
    dns.table["internal.example"] = ["10.0.0.5"]
    for url in ("https://nowhere.example/hook", "https://internal.example/hook"):
        with pytest.raises(DomainError) as refused, world.rt.uow() as uow:
            service.subscribe(
                uow,
                world.rt,
                actor=world.actor(OrgKind.BANK, "ICBC"),
                url=url,
                event_types=["*"],
            )
        assert (refused.value.code, refused.value.status) == ("unsafe_endpoint", 422)
    assert dns.asked == ["nowhere.example", "internal.example"]
    # and a resolver passed in is used instead of the module's
    with world.rt.uow() as uow:
        made = service.subscribe(
            uow,
            world.rt,
            actor=world.actor(OrgKind.BANK, "ICBC"),
            url="https://partner.example/hook",
            event_types=["*"],
            resolver=lambda host: ["93.184.216.34"],
        )
    assert made.subscription.url == "https://partner.example/hook"


@pytest.mark.parametrize("rebound", ["10.0.0.5", "169.254.169.254", "127.0.0.1", "::ffff:10.1.1.1"])
def test_a_host_rebound_to_a_private_address_after_registration_is_never_sent_to(
    world: World, dns: _DNS, monkeypatch: pytest.MonkeyPatch, rebound: str
) -> None:
    monkeypatch.delenv("SSCARD_WEBHOOK_ALLOW_LOOPBACK")
    dns.table["partner.example"] = ["93.184.216.34"]
    with world.rt.uow() as uow:
        sub = service.subscribe(
            uow,
            world.rt,
            actor=world.actor(OrgKind.BANK, "ICBC"),
            url="https://partner.example/hook",
            event_types=["card.activated"],
        ).subscription
    world.card(CardState.ACTIVE)
    dns.table["partner.example"] = ["93.184.216.34", rebound]  # DNS rebinding
    capture = _Capture()
    report = deliver(world.rt, client=capture.client)
    assert capture.requests == []  # nothing left the building
    assert report.counts["retry"] == 1
    [tried] = _bank_attempts(world, sub.id)
    assert (tried.status_code, tried.error, tried.duration_ms, tried.outcome) == (
        None,
        "unsafe_endpoint",
        0,
        "retry",
    )
    [(pending, _)] = _deliveries(world, sub.id)
    assert (pending.state, pending.attempts, pending.last_error) == (
        "pending",
        1,
        "unsafe_endpoint",
    )
    assert pending.next_attempt_at > world.rt.now()  # retried like any failure
    # back on a public address: the retry goes out, to the address that was checked
    dns.table["partner.example"] = ["93.184.216.34"]
    world.clock.advance(_wait(1))
    _real_time(world)
    assert deliver(world.rt, client=capture.client).counts["delivered"] == 1
    [sent] = capture.requests
    assert (sent.url.host, sent.url.scheme) == ("93.184.216.34", "https")
    assert sent.headers["host"] == "partner.example"
    assert sent.extensions["sni_hostname"] == "partner.example"  # TLS checks the name
    assert sent.headers["connection"] == "close"  # no pooled reuse for another name
    assert Webhook(_secret_of(world, sub.id)).verify(sent.content, dict(sent.headers))


def _secret_of(world: World, sub_id: int) -> str:
    with world.rt.uow() as uow:
        found = uow.session.get(WebhookSubscription, sub_id)
        assert found is not None
        return found.secret


def test_delivery_connects_to_the_checked_address_with_the_original_host(
    world: World, dns: _DNS
) -> None:
    dns.table["partner.example"] = ["127.0.0.1"]
    with receiver() as partner:
        port = partner.url.split(":")[2].split("/")[0]
        url = f"http://partner.example:{port}/hooks"
        sub = _subscribe(world, OrgKind.BANK, url, ["card.activated"], bank="ICBC")
        world.card(CardState.ACTIVE)
        _real_time(world)
        assert deliver(world.rt).counts["delivered"] == 1  # no real DNS was asked
        [got] = partner.delivered()
        assert got.headers["host"] == f"partner.example:{port}"
        assert Webhook(sub.secret).verify(got.body, got.headers)["type"] == "card.activated"
        # loopback is only for tests and the demo: without it the same host is refused
        world.card(CardState.ACTIVE)
        report = deliver(world.rt, allow_loopback=False)
        assert report.counts["retry"] == 1
        assert len(partner.requests) == 1
    assert dns.asked.count("partner.example") == 3  # at registration and at each attempt


# ------------------------------------------------------------------ replays are bounded


def _replay(world: World, sub_id: int, after: str | None = None) -> tuple[int, str | None]:
    with world.rt.uow() as uow:
        return service.replay(
            uow,
            world.rt,
            actor=world.actor(OrgKind.BANK, "ICBC"),
            subscription_id=sub_id,
            after=after,
        )


def _pending_of(world: World, sub_id: int) -> list[int]:
    return [e.id for d, e in _deliveries(world, sub_id) if d.state == "pending"]


def test_a_replay_skips_events_already_pending_for_the_webhook(world: World) -> None:
    sub = _subscribe(world, OrgKind.BANK, "http://127.0.0.1:9/x", ["card.*"], bank="ICBC")
    bank = world.actor(OrgKind.BANK, "ICBC")
    with world.rt.uow() as uow:
        service.set_paused(
            uow, world.rt, actor=bank, subscription_id=sub.subscription.id, paused=True
        )
    world.card(CardState.RECEIVED)
    _fan_out(world)
    fanned = _pending_of(world, sub.subscription.id)
    assert len(fanned) == 3
    assert _replay(world, sub.subscription.id) == (0, None)  # all three still pending
    for _ in range(5):
        assert _replay(world, sub.subscription.id) == (0, None)
    assert _pending_of(world, sub.subscription.id) == fanned  # no duplicates


def test_a_replay_is_refused_while_the_webhooks_queue_is_full(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "MAX_PENDING", 4)
    sub = _subscribe(world, OrgKind.BANK, "http://127.0.0.1:9/x", ["*"], bank="ICBC")
    world.cards(2, CardState.RECEIVED)  # more than 4 events for the bank
    _fan_out(world)
    with world.rt.uow() as uow:  # delivered long ago: a replay may send them again
        uow.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == sub.subscription.id)
            .values(state="delivered")
        )
        uow.commit()
    queued, more = _replay(world, sub.subscription.id)
    assert queued == 4  # up to the bound,
    assert more is not None  # with the cursor to go on
    with pytest.raises(DomainError) as refused:
        _replay(world, sub.subscription.id, more)
    assert (refused.value.code, refused.value.status) == ("replay_backlog", 409)
    assert refused.value.extra == {"pending": 4, "max_pending": 4}
    assert len(_pending_of(world, sub.subscription.id)) == 4
