"""A server worker's held sessions: for each thread that runs counters' use cases, one
connection each for reads and changes, kept across them, replaced when broken, never
shared with another thread."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from sscard.db.engine import HeldSessions, UnitOfWork


def test_use_cases_in_a_row_reuse_one_connection_and_their_transactions_end(
    pg_engine: Engine,
) -> None:
    held = HeldSessions(pg_engine)
    try:
        pids = []
        for _ in range(3):
            with UnitOfWork(held.factory(read_only=False)) as uow:
                pids.append(uow.session.scalar(select(text("pg_backend_pid()"))))
                uow.session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS t (n int)"))
                # not committed: closing the unit rolls its transaction back
            with UnitOfWork(held.factory(read_only=False)) as uow:  # the table went with it
                missing = uow.session.scalar(select(text("to_regclass('pg_temp.t')")))
                assert missing is None
        assert len(set(pids)) == 1  # the same connection each time
        with UnitOfWork(held.factory(read_only=True)) as uow:
            reader = uow.session.scalar(select(text("pg_backend_pid()")))
            assert uow.session.connection().get_execution_options()["isolation_level"] == (
                "AUTOCOMMIT"
            )
        assert reader not in pids  # reads have a connection of their own
    finally:
        held.close()


def test_a_broken_connection_is_replaced_at_the_next_use(pg_engine: Engine) -> None:
    held = HeldSessions(pg_engine)
    try:
        with UnitOfWork(held.factory(read_only=True)) as uow:
            first = uow.session.scalar(select(text("pg_backend_pid()")))
        with pg_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
            admin.commit()
        with pytest.raises(DBAPIError) as lost, UnitOfWork(held.factory(read_only=True)) as uow:
            uow.session.scalar(select(text("1")))  # the request that finds it broken fails
        assert lost.value.connection_invalidated  # answered 503 database_unavailable
        with UnitOfWork(held.factory(read_only=True)) as uow:
            again = uow.session.scalar(select(text("pg_backend_pid()")))
        assert again != first
    finally:
        held.close()


def test_each_thread_holds_connections_of_its_own(pg_engine: Engine) -> None:
    held = HeldSessions(pg_engine)
    pids: dict[str, list[int]] = {}
    out_before = pg_engine.pool.checkedout()  # type: ignore[attr-defined]

    def run(name: str) -> None:
        for _ in range(2):
            with UnitOfWork(held.factory(read_only=False)) as uow:
                pid = uow.session.scalar(select(text("pg_backend_pid()")))
                pids.setdefault(name, []).append(pid)

    try:
        threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run("main")
        for mine in pids.values():
            assert len(set(mine)) == 1  # a thread keeps its connection across use cases
        firsts = [mine[0] for mine in pids.values()]
        assert len(set(firsts)) == 4  # and shares it with no other thread
    finally:
        held.close()
    # closing them gives every thread's connections back to the pool
    assert pg_engine.pool.checkedout() == out_before  # type: ignore[attr-defined]
