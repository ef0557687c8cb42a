"""One UPDATE for a batch of state moves that differ from row to row.

A batch of decided moves falls into a few kinds (from, to and the fields each kind
sets): a sweeper's lapse sends some cards back to ``active`` and others to
``received``. ``update_moves`` applies them all in one statement: each column any kind
sets becomes a ``CASE`` over the kinds, each kind is guarded by the state it was decided
from, and on PostgreSQL each kind's ids travel as one array parameter (``= ANY``), so
the statement's text depends on the kinds, never on the number of rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Row,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from sscard.db.engine import is_postgres


@dataclass(frozen=True)
class MoveGroup:
    """Rows ``ids`` in state ``source`` take ``values`` (their new state among them)."""

    ids: Sequence[int]
    source: str
    values: dict[str, Any]


def among(session: Session, key: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``key IN ids``: on PostgreSQL one array parameter (``= ANY``), whatever the count."""
    if is_postgres(session):
        found: ColumnElement[bool] = key == any_(
            bindparam(None, list(ids), type_=ARRAY(BigInteger()))
        )
        return found
    inside: ColumnElement[bool] = key.in_(list(ids))
    return inside


def update_moves(
    session: Session,
    model: Any,
    groups: Sequence[MoveGroup],
    *returning: Any,
    state: str = "state",
) -> Sequence[Row[Any]]:
    """Apply every group in one UPDATE, bump the rows' version, and return ``returning``
    of the rows really moved (a row no longer in its group's ``source`` is left alone)."""
    groups = [g for g in groups if g.ids]
    if not groups:
        return []
    columns = model.__table__.c

    def among_ids(ids: Sequence[int]) -> ColumnElement[bool]:
        return among(session, model.id, ids)

    def value(name: str, v: Any) -> Any:
        return bindparam(None, v, type_=columns[name].type)

    names = list(dict.fromkeys(n for g in groups for n in g.values))
    assignments: dict[str, Any] = {}
    for name in names:
        setting = [g for g in groups if name in g.values]
        if len(groups) == 1:
            assignments[name] = value(name, setting[0].values[name])
        else:
            assignments[name] = case(
                *((among_ids(g.ids), value(name, g.values[name])) for g in setting),
                else_=getattr(model, name),
            )
    where = or_(*(and_(among_ids(g.ids), getattr(model, state) == g.source) for g in groups))
    return session.execute(
        update(model)
        .where(where)
        .values(**assignments, version=model.version + 1)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    ).all()


def insert_rows(
    session: Session,
    model: Any,
    params: Sequence[dict[str, Any]],
    *,
    key: str,
    shared: Sequence[str] = (),
) -> list[int]:
    """Insert a batch of rows; their ids, in the order of ``params``.

    On PostgreSQL one ``INSERT … SELECT FROM unnest(…)``: one array parameter per
    column, whatever the number of rows (columns named in ``shared`` hold one value for
    the whole batch and travel once). ``key`` is a column whose value is unique within
    the batch, to give each row its id back. Elsewhere an executemany INSERT.
    """
    if not params:
        return []
    t = model.__table__
    if not is_postgres(session):
        q = insert(t).returning(t.c.id, sort_by_parameter_order=True)
        return list(session.scalars(q, list(params)))
    per_row = [name for name in params[0] if name not in shared]
    json_columns = {n for n in per_row if isinstance(t.c[n].type, JSON)}

    def array_type(name: str) -> Any:
        kind = t.c[name].type
        return ARRAY(Text() if name in json_columns else kind)

    # JSON values travel as text and are read back with a cast.
    values: dict[str, Any] = {n: [p[n] for p in params] for n in per_row}
    for n in json_columns:
        values[n] = [None if v is None else json.dumps(v) for v in values[n]]
    rows = func.unnest(*(bindparam(f"{n}_", values[n], type_=array_type(n)) for n in per_row))
    m = rows.table_valued(*per_row).render_derived(name="m")
    q = (
        insert(t)
        .from_select(
            [*per_row, *shared],
            select(
                *(cast(m.c[n], t.c[n].type) if n in json_columns else m.c[n] for n in per_row),
                *(bindparam(f"{n}_", params[0][n], type_=t.c[n].type) for n in shared),
            ),
        )
        .returning(t.c.id, t.c[key])
    )
    id_of = {r[1]: r[0] for r in session.execute(q)}
    return [id_of[p[key]] for p in params]
