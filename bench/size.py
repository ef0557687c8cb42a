"""Bytes per cardholder: what every sscard table and its indexes take on disk."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from sscard.db.base import Base
from sscard.wiring import wire


@dataclass(frozen=True)
class Footprint:
    cardholders: int
    tables: dict[str, int]  # table -> pg_total_relation_size (heap, indexes, TOAST)

    @property
    def total(self) -> int:
        return sum(self.tables.values())

    @property
    def per_cardholder(self) -> float:
        return self.total / self.cardholders

    def as_dict(self) -> dict[str, object]:
        top = sorted(self.tables.items(), key=lambda kv: -kv[1])
        return {
            "cardholders": self.cardholders,
            "total_bytes": self.total,
            "bytes_per_cardholder": self.per_cardholder,
            "target_bytes_per_cardholder": 2048,
            "tables": {
                name: {"bytes": size, "per_cardholder": size / self.cardholders}
                for name, size in top
            },
        }


def footprint(url: str) -> Footprint:
    """``pg_total_relation_size`` of every table of sscard's schema, and the persons."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    wire()  # every feature's tables in the metadata
    names = sorted(t.name for t in Base.metadata.sorted_tables)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # nothing is left only in WAL when the sizes are read
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY(%s)",
            (names,),
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM persons").fetchone()
    assert count is not None
    return Footprint(cardholders=max(int(count[0]), 1), tables={r[0]: int(r[1]) for r in rows})
