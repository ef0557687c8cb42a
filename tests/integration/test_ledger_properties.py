"""Ledger invariants under random operation sequences (hypothesis), and under
concurrent settlements of one account on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from sscard.accounts import passwords
from sscard.accounts.ledger import check
from sscard.accounts.model import InsufficientBalance
from sscard.core.clock import FixedClock
from sscard.core.errors import DomainError
from sscard.core.passwords import PasswordLocked, WrongPassword
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
                receipt = world.settle(
                    hospital, card, amount, key=key, kind="outpatient", password=PIN
                )
            except InsufficientBalance:
                assert amount > expected
            else:
                expected -= amount
                paid.append((receipt.transaction_id, amount))
        elif paid:
            txn_id, original = paid.pop()
            back = min(amount, original)
            world.refund(hospital, txn_id, back, key=f"r-{key}")
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
    barrier = threading.Barrier(5)
    results: list[Any] = [None] * 5

    def pay(i: int) -> None:
        barrier.wait()
        try:
            results[i] = world.settle(
                hospital, card, 300, key=f"race-{i}", kind="outpatient", password=PIN
            )
        except DomainError as exc:  # collected and asserted below
            results[i] = exc

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    paid = [r for r in results if isinstance(r, SimpleNamespace)]
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
        results[i] = world.settle(hospital, card, 400, key="same", kind="outpatient", password=PIN)

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {r.transaction_id for r in results} == {results[0].transaction_id}
    assert sorted(r.replayed for r in results) == [False, True]
    assert personal_balance(world, card.person_id) == 600


def test_p_2_parallel_wrong_entries_all_count_on_postgresql(committed: World) -> None:
    from sscard.accounts.tables import MedicalPassword

    world = committed
    card = ready_card(world, balance=0)
    hospital = world.actor(OrgKind.HOSPITAL)
    barrier = threading.Barrier(6)
    results: list[Any] = [None] * 6

    def guess(i: int) -> None:
        barrier.wait()
        try:
            with world.rt.uow() as uow:
                passwords.verify(
                    uow, world.rt, actor=hospital, person_id=card.person_id, password=f"77777{i}"
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
    assert all(isinstance(r, WrongPassword | PasswordLocked) for r in results)
    with pytest.raises(PasswordLocked), world.rt.uow() as uow:  # until reset
        passwords.verify(uow, world.rt, actor=hospital, person_id=card.person_id, password=PIN)
