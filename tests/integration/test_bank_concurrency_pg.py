"""The bank side under concurrency on PostgreSQL, with real commits (C-1, V-1, P-2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from sscard.bank import service as bank
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.cards import loss
from sscard.cards.model import CardState
from sscard.cards.tables import Card, CardTransition
from sscard.core.clock import FixedClock
from sscard.core.errors import DomainError
from sscard.core.policy import load_policy
from sscard.db.engine import UnitOfWork, session_factory
from sscard.db.models import Base
from sscard.region.service import install_policy
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from sscard.runtime import Runtime
from tests.conftest import START
from tests.factories import World
from tests.integration.test_concurrency_pg import race

PIN = "802461"


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


def _holder(world: World, card: Card) -> str:
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
        return person.id_number


def _count(world: World, model: Any, *conditions: Any) -> int:
    with world.rt.uow() as uow:
        return int(
            uow.session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
        )


def test_v_1_two_financial_activations_of_one_account_exactly_one_wins(committed: World) -> None:
    world = committed
    card = world.card(CardState.RECEIVED)
    holder = _holder(world, card)

    def activate(password: str) -> Callable[[], Any]:
        def act() -> Any:
            with world.rt.uow() as uow:
                return bank.activate_financial(
                    uow,
                    world.rt,
                    actor=world.actor(OrgKind.OUTLET),
                    bank_card_number=card.bank_card_number or "",
                    id_number=holder,
                    financial_password=password,
                )

        return act

    results = race(activate(PIN), activate("735194"))
    wins = [r for r in results if isinstance(r, bank.AccountChange)]
    losses = [r for r in results if isinstance(r, DomainError)]
    assert len(wins) == 1, results
    assert len(losses) == 1, results
    assert losses[0].status == 409
    account_id = wins[0].account.id
    assert _count(world, BankAccountEvent, BankAccountEvent.account_id == account_id) == 2
    assert (
        _count(
            world,
            CardTransition,
            CardTransition.card_id == card.id,
            CardTransition.action == "financial_activate",
        )
        == 1
    )
    assert world.reload(card).state == CardState.ACTIVE


def test_p_2_concurrent_wrong_entries_all_count(committed: World) -> None:
    world = committed
    card = world.card(CardState.RECEIVED)
    number = card.bank_card_number or ""
    with world.rt.uow() as uow:
        bank.activate_financial(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            bank_card_number=number,
            id_number=_holder(world, card),
            financial_password=PIN,
        )
    limit = world.rt.policy.passwords.max_wrong_attempts

    def wrong() -> Any:
        with world.rt.uow() as uow:
            return bank.verify_financial_password(
                uow,
                world.rt,
                actor=world.actor(OrgKind.OUTLET),
                bank_card_number=number,
                financial_password="111222",
            )

    results = race(*[wrong] * limit)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.entry.attempts_left for r in results) == list(range(limit))
    with world.rt.uow() as uow:
        account = uow.session.scalar(select(BankAccount).where(BankAccount.card_id == card.id))
    assert account is not None
    assert account.failed_attempts == limit
    assert account.locked_at is not None


def test_l_2_financial_activation_racing_a_written_loss_report_never_deadlocks(
    committed: World,
) -> None:
    """Both lock the card first, then the account: one order, so they queue, never deadlock."""
    world = committed
    card = world.card(CardState.RECEIVED)
    holder = _holder(world, card)
    outlet = world.actor(OrgKind.OUTLET)

    def activate() -> Any:
        with world.rt.uow() as uow:
            return bank.activate_financial(
                uow,
                world.rt,
                actor=outlet,
                bank_card_number=card.bank_card_number or "",
                id_number=holder,
                financial_password=PIN,
            )

    def report() -> Any:
        with world.rt.uow() as uow:
            return loss.report_loss_written(uow, world.rt, actor=outlet, card_id=card.id)

    results = race(activate, report)
    assert isinstance(results[1], tuple), results  # the loss report always goes through
    with world.rt.uow() as uow:
        account = uow.session.scalar(select(BankAccount).where(BankAccount.card_id == card.id))
    assert account is not None
    assert account.state == "frozen"
    if isinstance(results[0], bank.AccountChange):
        assert account.state_before_freeze == "active"
    else:
        assert isinstance(results[0], DomainError), results
        assert results[0].status == 409
        assert account.state_before_freeze == "issued"
