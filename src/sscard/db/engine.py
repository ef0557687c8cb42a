"""Engines and the unit of work: the one place that begins and commits transactions."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE = "sqlite:///sscard.db"


def database_url() -> str:
    """``SSCARD_DATABASE_URL`` or the embedded SQLite file in the working directory."""
    return os.environ.get("SSCARD_DATABASE_URL", DEFAULT_SQLITE)


def normalise_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and write-locking BEGIN."""
    url = normalise_url(url or database_url())
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    # hide_parameters: error messages never carry ID or bank card numbers into logs.
    # No pre-ping: it costs a round trip per checkout. A connection found dead is
    # invalidated with the pool (SQLAlchemy does on a disconnect error), the request
    # answers 503 ``database_unavailable`` and the next checkout connects afresh.
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}
    options.update(kwargs)
    return create_engine(url, hide_parameters=True, **options)


def reads_of(engine: Engine) -> Engine:
    """The same engine for reads: no transaction (AUTOCOMMIT), so a read costs neither a
    BEGIN nor a COMMIT round trip; each statement still sees committed data only."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN, so SAVEPOINTs work.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: two writers queue instead of deadlocking.
        # Reads (AUTOCOMMIT, ``reads_of``) take no lock at all.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


SessionFactory = Callable[[], Session]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


class HeldSessions:
    """For each thread that runs counters' use cases (a server worker's event loop, its
    counter threads: ``api.unit.INLINE``), one session for reads and one for changes,
    each on a connection of its own that stays checked out, so that none of them pays
    for a pool checkout, a new session or a connection reset. A thread's sessions serve
    only that thread, one use case at a time. Closing a held session ends its transaction
    and forgets its objects; the session and its connection serve the next use case. A
    connection found broken is replaced at the next use.
    """

    def __init__(self, engine: Engine) -> None:
        self._engines = {True: reads_of(engine), False: engine}
        self._local = threading.local()
        self._all: list[tuple[Connection, Session]] = []
        self._lock = threading.Lock()

    def factory(self, *, read_only: bool) -> SessionFactory:
        def held() -> Session:
            mine: dict[bool, tuple[Connection, Session]] = self._local.__dict__.setdefault(
                "held", {}
            )
            found = mine.get(read_only)
            if found is not None and not (found[0].invalidated or found[0].closed):
                return found[1]
            if found is not None:
                found[0].close()
            conn = self._engines[read_only].connect()
            session = Session(bind=conn, expire_on_commit=False, autoflush=True)
            mine[read_only] = (conn, session)
            with self._lock:
                self._all.append((conn, session))
            return session

        return held

    def close(self) -> None:
        """At shutdown, once no thread uses them: every thread's sessions."""
        with self._lock:
            held, self._all = self._all, []
        for conn, session in held:
            session.close()
            conn.close()


class UnitOfWork:
    """One transaction: commits only when told to, rolls back otherwise.

    Services take a ``UnitOfWork`` and call ``commit()`` once at the end (or before
    raising a refusal whose record must stay, such as a counted wrong password);
    helpers below them never commit. A unit that is ``held`` (a request's unit, see
    ``api.unit``) only records that its use case is complete: its owner commits once,
    after it has added what the request itself writes (the idempotency record).
    """

    def __init__(self, factory: SessionFactory, *, held: bool = False) -> None:
        self._factory = factory
        self._session: Session | None = None
        self._held = held
        self.complete = False  # a held unit's use case called commit()

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'with'")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        # close() rolls back whatever was not committed and detaches the objects
        # without expiring them, so results stay readable after the block.
        self._session.close()
        self._session = None

    def commit(self) -> None:
        if self._held:
            self.session.flush()
            self.complete = True
        else:
            self.session.commit()

    def finish(self) -> None:
        """The owner's commit of a held unit (or of any unit): one COMMIT."""
        self.session.commit()
