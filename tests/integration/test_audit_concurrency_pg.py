"""Sealers at once on PostgreSQL, with real commits: one chain, never a fork (S-1)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from sscard.audit.chain import GENESIS, KEY_NAME
from sscard.audit.sealer import seal, seal_batch
from sscard.audit.tables import AuditChainHead, AuditRecord
from sscard.audit.verification import verify
from sscard.core.clock import FixedClock
from sscard.core.keys import load_key
from sscard.core.policy import load_policy
from sscard.db.engine import UnitOfWork, session_factory
from sscard.db.models import Base
from sscard.region.service import install_policy
from sscard.runtime import Runtime
from tests.conftest import START
from tests.integration.test_audit_trail import add_entries
from tests.integration.test_concurrency_pg import race


@pytest.fixture
def committed(pg_engine: Engine) -> Iterator[Runtime]:
    """A runtime whose every unit of work really commits; emptied afterwards."""
    factory = session_factory(pg_engine)
    clock = FixedClock(START)
    with UnitOfWork(factory) as uow:
        install_policy(uow.session, "dongguan", now=clock.now())
        uow.commit()
    yield Runtime(clock=clock, policy=load_policy("dongguan"), session_factory=factory)
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, :g)"),
            {"g": GENESIS},
        )


def _seqs(rt: Runtime) -> tuple[list[int | None], int]:
    with rt.uow() as uow:
        seqs = list(uow.session.scalars(select(AuditRecord.chain_seq).order_by(AuditRecord.id)))
        head = uow.session.scalar(select(AuditChainHead.last_seq))
    return seqs, int(head or 0)


def test_s1_two_sealers_and_a_writer_at_once_make_one_unbroken_chain(committed: Runtime) -> None:
    rt = committed
    for _ in range(3):
        add_entries(rt, 20)

    def writer() -> int:
        return sum(len(add_entries(rt, 5)) for _ in range(6))

    sealer: Callable[[], Any] = lambda: seal(rt, batch_size=7)  # noqa: E731
    results = race(sealer, sealer, writer)
    assert not [r for r in results if isinstance(r, Exception)], results
    seal(rt)  # whatever the writer committed after the sealers finished

    seqs, head = _seqs(rt)
    assert None not in seqs
    assert sorted(s for s in seqs if s is not None) == list(range(1, len(seqs) + 1))
    assert head == len(seqs)
    result = verify(rt, batch_size=11)
    assert result.intact, result.broken
    assert (result.checked, result.unsealed) == (len(seqs), 0)


def test_s1_a_second_sealer_waits_for_the_head_lock_and_continues_the_chain(
    committed: Runtime,
) -> None:
    rt = committed
    add_entries(rt, 12)
    done: list[int] = []
    with rt.uow() as first:
        assert seal_batch(first.session, key=load_key(KEY_NAME), now=rt.now(), size=5) == 5
        second = threading.Thread(target=lambda: done.append(seal(rt, batch_size=5)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # queued on the chain head's row lock
        first.commit()
    second.join(timeout=30)
    assert not second.is_alive()
    seqs, head = _seqs(rt)
    assert done == [len(seqs) - 5]
    assert sorted(s for s in seqs if s is not None) == list(range(1, len(seqs) + 1))
    assert head == len(seqs)
    assert verify(rt).intact
    with rt.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditChainHead)) == 1
