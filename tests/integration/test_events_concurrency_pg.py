"""Deliverers racing on PostgreSQL (real commits): no event is ever sent twice."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM
from sscard.api.app import create_app
from sscard.audit.service import record
from sscard.cards.model import CardState
from sscard.core.pagination import encode_cursor
from sscard.events import service
from sscard.events.delivery import deliver
from sscard.register.model import OrgKind
from tests.events_receiver import receiver
from tests.factories import World
from tests.integration.test_concurrency_pg import committed, race

__all__ = ["committed"]  # the fixture: a world whose units of work really commit


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers listen on 127.0.0.1, and the deliverer checks every attempt."""
    monkeypatch.setenv("SSCARD_WEBHOOK_ALLOW_LOOPBACK", "1")


def test_three_concurrent_deliverers_never_send_one_event_twice(committed: World) -> None:
    world = committed
    with receiver(delay=0.01) as icbc, receiver(delay=0.01) as center:
        for kind, partner in ((OrgKind.BANK, icbc), (OrgKind.CENTER, center)):
            with world.rt.uow() as uow:
                service.subscribe(
                    uow,
                    world.rt,
                    actor=world.actor(kind, "ICBC" if kind is OrgKind.BANK else None),
                    url=partner.url,
                    event_types=["card.*"],
                    allow_loopback=True,
                )
        world.cards(3, CardState.ACTIVE)
        # one subscription each: two deliver side by side, the third finds none left
        results = race(*(lambda: deliver(world.rt, subscriptions=1) for _ in range(3)))
        assert not [r for r in results if isinstance(r, Exception)], results
        deliver(world.rt)  # whatever a lost race left
        for partner in (icbc, center):
            ids = [r.headers["webhook-id"] for r in partner.requests]
            assert ids, "nothing was delivered"
            assert [i for i, n in Counter(ids).items() if n > 1] == []
            assert ids == sorted(ids, key=lambda i: int(i[4:]))  # in order
        assert len(icbc.requests) == len(center.requests) == 12


def test_the_servers_delivery_thread_sends_on_its_own(committed: World) -> None:
    world = committed
    with receiver() as partner:
        with world.rt.uow() as uow:
            service.subscribe(
                uow,
                world.rt,
                actor=world.actor(OrgKind.CENTER),
                url=partner.url,
                event_types=["card.ordered"],
                allow_loopback=True,
            )
        world.card(CardState.ORDERED)
        app = create_app(world.rt, sweep_interval=0, delivery_interval=0.02)
        with TestClient(app):
            deadline = time.monotonic() + 10
            while not partner.delivered() and time.monotonic() < deadline:
                time.sleep(0.02)
        assert [r.headers["webhook-id"][:4] for r in partner.delivered()] == ["evt_"]


def _change(session: Session, at: datetime, action: str) -> None:
    record(session, actor=SYSTEM, at=at, action=action, subject_type="card", subject_id=None)


def test_a_change_that_commits_late_still_comes_after_a_partners_cursor(committed: World) -> None:
    rt, center = committed.rt, committed.actor(OrgKind.CENTER)

    def feed(after: str | None) -> list[dict[str, Any]]:
        with rt.uow() as uow:
            items = service.events(uow.session, rt, actor=center, after=after, limit=100)[0]
        return [e for e in items if e["type"].startswith("card.")]

    with rt.uow() as slow:
        _change(slow.session, rt.now(), "card.activate")
        slow.session.flush()  # the lower id, not committed yet
        with rt.uow() as fast:
            _change(fast.session, rt.now(), "card.produce")
            fast.commit()
        deliver(rt)
        seen = feed(None)
        assert [e["type"] for e in seen] == ["card.produced"]
        cursor = encode_cursor(seen[-1]["data"]["sequence"])
        slow.commit()
    deliver(rt)
    assert [e["type"] for e in feed(cursor)] == ["card.activated"]  # not skipped
