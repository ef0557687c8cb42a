"""Hot statements executed with the least work per call.

SQLAlchemy's execution of a Core statement (cache lookup, execution context, result
proxy) costs about three times the driver's own work for a one-row lookup. The counters'
calls run a handful of such statements each, so ``Prepared`` keeps each statement's SQL
compiled once per dialect and, on PostgreSQL, runs it straight through psycopg on the
unit's own connection (inside its transaction), with the statement's own bind and result
type processing, the same error translation as SQLAlchemy (``IntegrityError``, a lost
connection invalidated and reported as such) and the engine's ``before_cursor_execute``
event. Elsewhere (SQLite) it is an ordinary ``Connection.execute``. The statements stay
the Core objects they are: one definition, compiled for each database.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select


@dataclass(frozen=True)
class _Form:
    """One statement compiled for one dialect (and, for an INSERT, one set of keys)."""

    compiled: Compiled
    sql: str
    binds: Mapping[str, Any]  # bind name → its type's processor (or None)
    row: Any  # a namedtuple class of the returned columns, or None
    results: tuple[Any, ...]  # each returned column's processor (or None)


class Prepared:
    """A Core statement, compiled once per dialect, run with the driver on PostgreSQL."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self.statement = statement
        self._forms: dict[tuple[str, tuple[str, ...]], _Form] = {}
        returned = getattr(statement, "exported_columns", None)
        has_rows = isinstance(statement, Select) or bool(getattr(statement, "_returning", ()))
        self._columns = list(returned) if has_rows and returned is not None else []

    def _form(self, dialect: Dialect, keys: tuple[str, ...]) -> _Form:
        cached = self._forms.get((dialect.name, keys))
        if cached is not None:
            return cached
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
        if "POSTCOMPILE" in compiled.string:
            raise ValueError(
                "a prepared statement cannot hold an expanding IN: give each value its own "
                f"bindparam ({compiled.string})"
            )
        binds = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        names = [column.key for column in self._columns]
        form = _Form(
            compiled=compiled,
            sql=compiled.string,
            binds=binds,
            row=namedtuple("Row", names, rename=True) if names else None,
            results=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self._columns
            ),
        )
        self._forms[(dialect.name, keys)] = form
        return form

    def _bound(self, form: _Form, values: Mapping[str, Any]) -> dict[str, Any]:
        bound = dict(form.compiled.construct_params(values) or {})
        for name, process in form.binds.items():
            if process is not None and name in bound:
                bound[name] = process(bound[name])
        return bound

    def all(self, s: Session | Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row the statement returns (named tuples)."""
        conn = s.connection() if isinstance(s, Session) else s
        values = dict(params or {})
        if conn.dialect.name != "postgresql":
            result = conn.execute(self.statement, values)
            return list(result.all()) if result.returns_rows else []
        form = self._form(conn.dialect, tuple(sorted(values)))
        bound = self._bound(form, values)
        raw = conn.connection.driver_connection
        assert raw is not None
        conn.dispatch.before_cursor_execute(conn, None, form.sql, bound, None, False)
        try:
            cursor = raw.execute(form.sql, bound)
            fetched: Sequence[Any] = cursor.fetchall() if form.row is not None else ()
        except conn.dialect.loaded_dbapi.Error as exc:
            raise translated(conn, exc, form.sql, bound) from exc
        if form.row is None:
            return []
        rows = []
        for values_ in fetched:
            rows.append(
                form.row(
                    *(
                        value if process is None else process(value)
                        for value, process in zip(values_, form.results, strict=True)
                    )
                )
            )
        return rows

    def first(self, s: Session | Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        found = self.all(s, params)
        return found[0] if found else None

    def scalar(self, s: Session | Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        found = self.first(s, params)
        return None if found is None else found[0]

    def run(self, s: Session | Connection, params: Mapping[str, Any] | None = None) -> None:
        """Execute, for its effect."""
        self.all(s, params)

    def run_many(self, s: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute for each of ``rows`` (an INSERT of a batch, rows with the same keys): on
        PostgreSQL a big batch of a plain INSERT is one ``COPY``, a smaller one a pipelined
        ``executemany`` on the driver."""
        if len(rows) <= 1:
            if rows:
                self.run(s, rows[0])
            return
        conn = s.connection() if isinstance(s, Session) else s
        if conn.dialect.name != "postgresql":
            conn.execute(self.statement, list(rows))
            return
        if len(rows) >= COPY_FROM and self._plain_insert:
            self._copy(conn, rows)
            return
        form = self._form(conn.dialect, tuple(sorted(rows[0])))
        batch = [self._bound(form, row) for row in rows]
        raw = conn.connection.driver_connection
        assert raw is not None
        conn.dispatch.before_cursor_execute(conn, None, form.sql, batch, None, True)
        try:
            raw.cursor().executemany(form.sql, batch)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise translated(conn, exc, form.sql, batch) from exc

    @property
    def _plain_insert(self) -> bool:
        return isinstance(self.statement, Insert) and not (
            self.statement._returning or self.statement.select is not None
        )

    def _copy(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """A big batch of a plain INSERT as one ``COPY … FROM STDIN`` (PostgreSQL): no
        statement per row, no SQL text to parse; each value goes through its column's own
        bind processing, as in an INSERT."""
        assert isinstance(self.statement, Insert)
        table = self.statement.table
        names = list(rows[0])
        dialect = conn.dialect
        processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        ]
        quote = dialect.identifier_preparer.quote
        sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
        raw = conn.connection.driver_connection
        assert raw is not None
        conn.dispatch.before_cursor_execute(conn, None, sql, rows, None, True)
        try:
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(
                        [
                            value if process is None else process(value)
                            for value, process in zip(
                                (row[n] for n in names), processors, strict=True
                            )
                        ]
                    )
        except dialect.loaded_dbapi.Error as exc:
            raise translated(conn, exc, sql, None) from exc


# From this many rows on, a plain INSERT batch is a COPY on PostgreSQL.
COPY_FROM = 100


def translated(conn: Connection, exc: Exception, sql: str, params: Any) -> DBAPIError:
    """The driver's error as SQLAlchemy would raise it; a lost connection is invalidated
    (its pool reconnects at the next checkout) and said to be."""
    raw = conn.connection.dbapi_connection
    lost = conn.dialect.is_disconnect(exc, raw, None)  # type: ignore[arg-type]
    if lost:
        conn.invalidate(exc)
    wrapped = DBAPIError.instance(
        sql,
        params,
        exc,
        conn.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=conn.dialect,
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped
