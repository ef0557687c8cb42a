"""Ledger invariants under random operation sequences (hypothesis), and under
concurrent settlements of one account on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from sscard.accounts import settlement
from sscard.accounts.ledger import check
from sscard.accounts.model import InsufficientBalance
from sscard.core.clock import FixedClock
from sscard.core.errors import DomainError
from sscard.core.policy import load_policy
from sscard.db.engine import UnitOfWork, session_factory
from sscard.db.models import Base
from sscard.region.service import install_policy
from sscard.register.model import OrgKind
from sscard.runtime import Runtime
from tests.conftest import START
from tests.factories import World
from tests.integration.test_accounts import PIN, credit, personal_balance, ready_card

Op = tuple[str, int]
operations = st.lists(
    st.tuples(st.sampled_from(["credit", "pay", "refund"]), st.integers(1, 5_000)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_c_4_balance_is_the_sum_of_entries_and_never_negative(world: World, ops: list[Op]) -> None:
    card = ready_card(world, balance=0)
    hospital = world.actor(OrgKind.HOSPITAL)
    expected = 0
    paid: list[tuple[int, int]] = []
    for i, (op, amount) in enumerate(ops):
        key = f"{card.id}-{i}"
        if op == "credit":
            credit(world, card.person_id, amount)
            expected += amount
        elif op == "pay":
            try:
                receipt = settlement.settle(
                    world.rt,
                    actor=hospital,
                    card_number=card.card_number or "",
                    kind="outpatient",
                    amount_fen=amount,
                    idempotency_key=key,
                    password=PIN,
                )
            except InsufficientBalance:
                assert amount > expected
            else:
                expected -= amount
                paid.append((receipt.txn.id, amount))
        elif paid:
            txn_id, original = paid.pop()
            back = min(amount, original)
            settlement.refund(
                world.rt,
                actor=hospital,
                settlement_id=txn_id,
                amount_fen=back,
                idempotency_key=f"r-{key}",
            )
            expected += back
        assert expected >= 0
        assert personal_balance(world, card.person_id) == expected
    with world.rt.uow() as uow:
        assert check(uow.session) == []


@pytest.fixture
def committed(pg_engine: Engine) -> Iterator[World]:
    factory = session_factory(pg_engine)
    clock = FixedClock(START)
    with UnitOfWork(factory) as uow:
        install_policy(uow.session, "dongguan", now=clock.now())
        uow.commit()
    yield World(Runtime(clock=clock, policy=load_policy("dongguan"), session_factory=factory))
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def test_c_4_concurrent_settlements_never_overdraw_on_postgresql(committed: World) -> None:
    world = committed
    card = ready_card(world, balance=1_000)
    hospital = world.actor(OrgKind.HOSPITAL)
    pharmacy_card = card.card_number or ""
    barrier = threading.Barrier(5)
    results: list[Any] = [None] * 5

    def pay(i: int) -> None:
        barrier.wait()
        try:
            results[i] = settlement.settle(
                world.rt,
                actor=hospital,
                card_number=pharmacy_card,
                kind="outpatient",
                amount_fen=300,
                idempotency_key=f"race-{i}",
                password=PIN,
            )
        except DomainError as exc:  # collected and asserted below
            results[i] = exc

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    paid = [r for r in results if isinstance(r, settlement.Receipt)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert (len(paid), len(refused)) == (3, 2), results
    assert personal_balance(world, card.person_id) == 100
    with world.rt.uow() as uow:
        assert check(uow.session) == []


def test_c_4_same_key_racing_debits_once_on_postgresql(committed: World) -> None:
    world = committed
    card = ready_card(world, balance=1_000)
    hospital = world.actor(OrgKind.HOSPITAL)
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def pay(i: int) -> None:
        barrier.wait()
        results[i] = settlement.settle(
            world.rt,
            actor=hospital,
            card_number=card.card_number or "",
            kind="outpatient",
            amount_fen=400,
            idempotency_key="same",
            password=PIN,
        )

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {r.txn.id for r in results} == {results[0].txn.id}
    assert personal_balance(world, card.person_id) == 600


def test_p_2_parallel_wrong_entries_all_count_on_postgresql(committed: World) -> None:
    from sscard.accounts import passwords
    from sscard.accounts.tables import MedicalPassword

    world = committed
    card = ready_card(world, balance=0)
    hospital = world.actor(OrgKind.HOSPITAL)
    barrier = threading.Barrier(6)
    results: list[Any] = [None] * 6

    def guess(i: int) -> None:
        barrier.wait()
        try:
            passwords.verify(
                world.rt, actor=hospital, person_id=card.person_id, password=f"77777{i}"
            )
        except DomainError as exc:  # collected and asserted below
            results[i] = exc

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with world.rt.uow() as uow:
        row = uow.session.get(MedicalPassword, card.person_id)
        assert row is not None
        assert row.failed_attempts == world.rt.policy.passwords.max_wrong_attempts
        assert row.locked_at is not None
    assert all(isinstance(r, passwords.WrongPassword | passwords.PasswordLocked) for r in results)
    with pytest.raises(passwords.PasswordLocked):  # the right one too, until reset
        passwords.verify(world.rt, actor=hospital, person_id=card.person_id, password=PIN)
