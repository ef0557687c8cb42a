"""Concurrency on PostgreSQL: with real commits, exactly one of two racing acts wins."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import CardTransition
from sscard.core.clock import FixedClock
from sscard.core.errors import DomainError
from sscard.core.policy import load_policy
from sscard.db.engine import UnitOfWork, session_factory
from sscard.db.models import Base
from sscard.jobs.sweeper import sweep
from sscard.region.service import install_policy
from sscard.register.model import OrgKind
from sscard.runtime import Runtime
from tests.conftest import START
from tests.factories import World


@pytest.fixture
def committed(pg_engine: Engine) -> Iterator[World]:
    """A world whose every unit of work really commits; emptied afterwards."""
    factory = session_factory(pg_engine)
    clock = FixedClock(START)
    with UnitOfWork(factory) as uow:
        install_policy(uow.session, "dongguan", now=clock.now())
        uow.commit()
    yield World(Runtime(clock=clock, policy=load_policy("dongguan"), session_factory=factory))
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def race(*acts: Callable[[], Any]) -> list[Any]:
    """Run the acts at the same moment; return each one's result or exception."""
    barrier = threading.Barrier(len(acts))
    results: list[Any] = [None] * len(acts)

    def run(i: int, act: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = act()
        except Exception as exc:  # collected and asserted by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(acts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def _count(world: World, card_id: int, action: str) -> int:
    with world.rt.uow() as uow:
        return int(
            uow.session.scalar(
                select(func.count())
                .select_from(CardTransition)
                .where(CardTransition.card_id == card_id, CardTransition.action == action)
            )
            or 0
        )


def test_v_1_two_outlets_activating_one_card_exactly_one_wins(committed: World) -> None:
    world = committed
    card = world.card(CardState.RECEIVED)
    outlet = world.actor(OrgKind.OUTLET)
    hospital = world.actor(OrgKind.HOSPITAL)

    def at(actor: Any, channel: str) -> Callable[[], Any]:
        def act() -> Any:
            with world.rt.uow() as uow:
                return cards.activate(
                    uow,
                    world.rt,
                    actor=actor,
                    card_id=card.id,
                    channel=channel,
                    card_number=card.card_number,
                )

        return act

    results = race(at(outlet, "outlet"), at(hospital, "hospital"))
    wins = [r for r in results if isinstance(r, cards.Moved)]
    losses = [r for r in results if isinstance(r, DomainError)]
    assert len(wins) == 1, results
    assert len(losses) == 1, results
    assert losses[0].status == 409  # illegal transition: the card is already active
    assert _count(world, card.id, "activate") == 1
    assert world.reload(card).state == CardState.ACTIVE


def test_l_1_two_loss_reports_at_once_exactly_one_wins(committed: World) -> None:
    world = committed
    card = world.card(CardState.ACTIVE)
    outlet = world.actor(OrgKind.OUTLET)

    def oral() -> Any:
        with world.rt.uow() as uow:
            return loss.report_loss_oral(
                uow, world.rt, actor=outlet, card_id=card.id, channel="bank_phone"
            )

    results = race(oral, oral)
    assert sum(isinstance(r, cards.Moved) for r in results) == 1, results
    assert sum(isinstance(r, DomainError) and r.status == 409 for r in results) == 1
    assert _count(world, card.id, "report_lost_oral") == 1


def test_l_1_two_sweepers_at_once_apply_each_deadline_once(committed: World) -> None:
    world = committed
    lost = world.cards(12, CardState.LOST_ORAL)
    world.advance(days=6)
    results = race(lambda: sweep(world.rt, batch_size=3), lambda: sweep(world.rt, batch_size=3))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.counts["oral_report_lapsed"] for r in results) == 12
    assert all(_count(world, c.id, "oral_report_lapse") == 1 for c in lost)
    assert [world.reload(c).state for c in lost] == [CardState.ACTIVE] * len(lost)
