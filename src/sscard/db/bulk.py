"""Bulk paths: a batch of rows loaded at once, then checked and written set-based.

On PostgreSQL ``load`` streams rows with ``COPY … FROM STDIN`` on the unit's own
connection (inside its transaction); elsewhere (SQLite) it is one executemany INSERT.
``staging`` makes a temporary table for a batch: the rows go in with ``load``, the
checks against the database are joins on it, and the writes are ``INSERT … SELECT``
and ``UPDATE`` statements over it. ``next_ids`` hands out a table's ids for the staged
rows, so every table of a batch (and its audit records) can be written from the same
staging table without bringing ids back to Python.

``load`` passes values as they are: staged values are already in their stored form
(sealed, blind-indexed); a table whose column types process values on the way in
(sealed columns) must be staged, never loaded directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from sscard.db.statements import translated


def _conn(s: Session | Connection) -> Connection:
    return s.connection() if isinstance(s, Session) else s


def load(
    s: Session | Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Add ``rows`` (tuples in the order of ``columns``) to ``table``; how many."""
    conn = _conn(s)
    if conn.dialect.name != "postgresql":
        batch = [dict(zip(columns, row, strict=True)) for row in rows]
        if batch:
            conn.execute(insert(table), batch)
        return len(batch)
    quote = conn.dialect.identifier_preparer
    sql = (
        f"COPY {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) "
        "FROM STDIN"
    )
    as_json = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    raw = conn.connection.driver_connection
    assert raw is not None
    count = 0
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                if as_json:
                    values = list(row)
                    for i in as_json:
                        values[i] = None if values[i] is None else json.dumps(values[i])
                    copy.write_row(values)
                else:
                    copy.write_row(row)
                count += 1
    except conn.dialect.loaded_dbapi.Error as exc:
        raise translated(conn, exc, sql, None) from exc
    return count


@contextmanager
def staging(s: Session | Connection, name: str, *columns: Column[Any]) -> Iterator[Table]:
    """A temporary table ``name`` for one batch, dropped when the block ends normally
    (after an error the transaction's rollback takes it away)."""
    conn = _conn(s)
    schema = "pg_temp" if conn.dialect.name == "postgresql" else "temp"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{name}")
    staged = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    staged.create(conn)
    yield staged
    conn.exec_driver_sql(f"DROP TABLE {schema}.{name}")


def next_ids(s: Session | Connection, staged: Table, column: str, target: Table) -> None:
    """Fill ``staged.c[column]`` with new, unique ids of ``target``: from its sequence on
    PostgreSQL (safe beside concurrent writers; not necessarily in ``seq`` order), on
    SQLite (whose writer holds the database: BEGIN IMMEDIATE) the highest id plus each
    row's ``seq``."""
    conn = _conn(s)
    if conn.dialect.name == "postgresql":
        sequence = conn.scalar(select(func.pg_get_serial_sequence(target.name, "id")))
        conn.execute(
            update(staged).values({column: func.nextval(sequence)}),
        )
        return
    base = conn.scalar(select(func.coalesce(func.max(target.c.id), 0)))
    conn.execute(update(staged).values({column: staged.c.seq + base}))


def json_object(s: Session | Connection, pairs: Mapping[str, Any]) -> ColumnElement[Any]:
    """A JSON object built in SQL from ``pairs`` (key → column, or a str/int constant)."""
    args: list[Any] = []
    for key, value in pairs.items():
        column = value
        if not isinstance(value, ColumnElement):
            column = const(s, value, BigInteger() if isinstance(value, int) else String())
        args += [const(s, key, String()), column]
    name = "json_build_object" if _conn(s).dialect.name == "postgresql" else "json_object"
    built: ColumnElement[Any] = getattr(func, name)(*args)
    return built


def const(s: Session | Connection, value: Any, type_: Any) -> ColumnElement[Any]:
    """A bound constant of ``type_``, its type spelt out for PostgreSQL (whose driver
    sends a str or a NULL untyped); SQLite takes it as it is."""
    bound: ColumnElement[Any] = literal(value, type_)
    return cast(bound, type_) if _conn(s).dialect.name == "postgresql" else bound


def analyze(s: Session | Connection, staged: Table) -> None:
    """Give the planner the staging table's statistics (PostgreSQL never gathers a
    temporary table's by itself)."""
    conn = _conn(s)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE pg_temp.{staged.name}")
