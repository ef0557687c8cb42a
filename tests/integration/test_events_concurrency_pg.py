"""Deliverers racing on PostgreSQL (real commits): no event is ever sent twice."""

from __future__ import annotations

import time
from collections import Counter

from fastapi.testclient import TestClient

from sscard.api.app import create_app
from sscard.cards.model import CardState
from sscard.events import service
from sscard.events.delivery import deliver
from sscard.register.model import OrgKind
from tests.events_receiver import receiver
from tests.factories import World
from tests.integration.test_concurrency_pg import committed, race

__all__ = ["committed"]  # the fixture: a world whose units of work really commit


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
