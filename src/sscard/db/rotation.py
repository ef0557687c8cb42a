"""Key status and rotation over every sealed column (``sscard keys ...``).

The sealed columns are found in the metadata (every ``EncryptedString`` column, each
with its side and context), so both sides' tables are covered without naming them;
each value is opened and sealed again with its own side's keyring. Rows are read
raw (the stored text, not through the column type) in primary-key order, ``batch``
at a time, and written back with one executemany ``UPDATE`` guarded by the old
value, one transaction and one audit record per batch. A run only touches values
not yet under the newest version, so it can be stopped and run again at any time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    String,
    TableClause,
    bindparam,
    case,
    column,
    func,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.audit.service import record
from sscard.core.protect import Side, keyrings
from sscard.db.models import Base
from sscard.db.types import EncryptedString
from sscard.runtime import Runtime


@dataclass(frozen=True)
class SealedColumn:
    table: str
    column: str
    key: str  # the table's single-column primary key
    side: Side
    context: str
    index_kind: str | None  # set when the column has a <column>_hash blind index

    @property
    def hash_column(self) -> str | None:
        return f"{self.column}_hash" if self.index_kind else None

    def raw(self) -> TableClause:
        """The table as stored: sealed text and blind index, no column types applied."""
        names = [self.column] + ([self.hash_column] if self.hash_column else [])
        return table(self.table, column(self.key), *(column(n, String()) for n in names))


def sealed_columns() -> list[SealedColumn]:
    """Every sealed column of the schema, both sides."""
    found = []
    for t in Base.metadata.sorted_tables:
        (key,) = t.primary_key.columns if len(t.primary_key.columns) == 1 else (None,)
        for c in t.columns:
            if isinstance(c.type, EncryptedString):
                assert key is not None, f"{t.name} needs a single-column primary key"
                found.append(
                    SealedColumn(
                        t.name, c.name, key.name, c.type.side, c.type.context, c.type.index_kind
                    )
                )
    return found


@dataclass
class ColumnStatus:
    name: str  # "persons.id_number" or "persons.id_number_hash"
    keyring: str  # the key name: data, index, bank_data, bank_index
    current: int
    by_version: dict[int, int] = field(default_factory=dict)
    other: int = 0  # values under no configured version

    @property
    def total(self) -> int:
        return sum(self.by_version.values()) + self.other

    @property
    def behind(self) -> int:
        """Values not yet under the current version."""
        return self.total - self.by_version.get(self.current, 0)


def _counts(
    s: Session, col: ColumnElement[str], prefix: str, versions: tuple[int, ...]
) -> list[int]:
    sums = [func.sum(case((col.like(f"{prefix}{v}:%"), 1), else_=0)) for v in versions]
    row = s.execute(select(func.count(col), *sums)).one()
    return [int(n or 0) for n in row]


def status(s: Session) -> list[ColumnStatus]:
    """How many values each sealed column and blind index holds under each key version."""
    out = []
    for sc in sealed_columns():
        rings = keyrings(sc.side)
        raw = sc.raw()
        pairs: list[tuple[str, str, str, tuple[int, ...], int]] = [
            (sc.column, sc.side.data, "v", rings.data.versions, rings.data.current)
        ]
        if sc.hash_column:
            pairs.append(
                (sc.hash_column, sc.side.index, "h", rings.index.versions, rings.index.current)
            )
        for name, keyring, prefix, versions, current in pairs:
            total, *per = _counts(s, raw.c[name], prefix, versions)
            out.append(
                ColumnStatus(
                    name=f"{sc.table}.{name}",
                    keyring=keyring,
                    current=current,
                    by_version=dict(zip(versions, per, strict=True)),
                    other=total - sum(per),
                )
            )
    return out


def _batches(
    rt: Runtime, sc: SealedColumn, target: str, prefix: str, current: int, batch: int
) -> Iterator[tuple[Session, list[tuple[object, str, str | None]]]]:
    """Open transactions over the rows whose ``target`` is not under ``current`` yet."""
    raw = sc.raw()
    key, target_col = raw.c[sc.key], raw.c[target]
    wanted = [raw.c[sc.column]] + ([raw.c[sc.hash_column]] if sc.hash_column else [])
    last: object | None = None
    while True:
        with rt.uow() as uow:
            q = select(key, *wanted).where(
                target_col.is_not(None), ~target_col.like(f"{prefix}{current}:%")
            )
            if last is not None:
                q = q.where(key > last)
            rows = [
                (r[0], r[1], r[2] if sc.hash_column else None)
                for r in uow.session.execute(q.order_by(key).limit(batch)).all()
            ]
            if not rows:
                return
            yield uow.session, rows
            uow.commit()
        if len(rows) < batch:
            return
        last = rows[-1][0]


def rotate_data(rt: Runtime, *, actor: Actor, batch: int = 5000) -> dict[str, int]:
    """Seal every value again under its side's newest data key; the counts per column."""
    done: dict[str, int] = {}
    for sc in sealed_columns():
        ring = keyrings(sc.side).data
        raw = sc.raw()
        guarded = (
            update(raw)
            .where(raw.c[sc.key] == bindparam("p_key"), raw.c[sc.column] == bindparam("p_old"))
            .values({sc.column: bindparam("p_new")})
        )
        name = f"{sc.table}.{sc.column}"
        done[name] = 0
        for s, rows in _batches(rt, sc, sc.column, "v", ring.current, batch):
            params = [
                {
                    "p_key": key,
                    "p_old": old,
                    "p_new": ring.seal(ring.open(old, context=sc.context), context=sc.context),
                }
                for key, old, _ in rows
            ]
            s.execute(guarded, params)
            _audit(s, rt, actor, "keys.data_rotated", name, ring.name, ring.current, len(rows))
            done[name] += len(rows)
    return done


def rotate_index(rt: Runtime, *, actor: Actor, batch: int = 5000) -> dict[str, int]:
    """Recompute every blind index under its side's newest index key; counts per column."""
    done: dict[str, int] = {}
    for sc in sealed_columns():
        if not (sc.hash_column and sc.index_kind):
            continue
        rings = keyrings(sc.side)
        raw = sc.raw()
        guarded = (
            update(raw)
            .where(raw.c[sc.key] == bindparam("p_key"), raw.c[sc.hash_column] == bindparam("p_old"))
            .values({sc.hash_column: bindparam("p_new")})
        )
        name = f"{sc.table}.{sc.hash_column}"
        done[name] = 0
        cur = rings.index.current
        for s, rows in _batches(rt, sc, sc.hash_column, "h", cur, batch):
            params = [
                {
                    "p_key": key,
                    "p_old": old_hash,
                    "p_new": rings.index.blind(
                        rings.data.open(sealed, context=sc.context), kind=sc.index_kind
                    ),
                }
                for key, sealed, old_hash in rows
            ]
            s.execute(guarded, params)
            _audit(s, rt, actor, "keys.index_rotated", name, rings.index.name, cur, len(rows))
            done[name] += len(rows)
    return done


def _audit(
    s: Session, rt: Runtime, actor: Actor, action: str, name: str, ring: str, v: int, n: int
) -> None:
    record(
        s,
        actor=actor,
        at=rt.now(),
        action=action,
        subject_type="sealed_column",
        subject_id=None,
        detail={"column": name, "keyring": ring, "version": v, "values": n},
    )
