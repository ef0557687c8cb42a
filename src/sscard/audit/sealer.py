"""Sealing: chaining unsealed audit entries in set-based batches, one sealer at a time.

Writers never chain inline (that would queue every transaction of the province on one
row): they insert entries with empty chain columns. A sealer locks the chain head,
takes the oldest unsealed entries by id (the partial index ``ix_audit_records_unsealed``
keeps that cheap), gives them the next seqs and hashes with one executemany UPDATE, and
moves the head, all in one transaction. An entry committed late with a lower id simply
gets a later seq.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sscard.audit.chain import GENESIS, KEY_NAME, ChainEntry, link
from sscard.audit.tables import AuditChainHead, AuditRecord, ChainHash
from sscard.core.keys import load_key
from sscard.db.base import UTCDateTime, table
from sscard.db.engine import is_postgres
from sscard.runtime import Runtime

SEAL_BATCH = 5000
HEAD_ID = 1

ENTRY_COLUMNS = (
    AuditRecord.id,
    AuditRecord.occurred_at,
    AuditRecord.kind,
    AuditRecord.actor_staff_id,
    AuditRecord.actor_org_id,
    AuditRecord.actor_person_id,
    AuditRecord.source,
    AuditRecord.channel,
    AuditRecord.action,
    AuditRecord.subject_type,
    AuditRecord.subject_id,
    AuditRecord.person_id,
    AuditRecord.detail,
)


def entry_of(row: Row[Any], chain_seq: int) -> ChainEntry:
    """The chained view of a row selected with ``ENTRY_COLUMNS``."""
    return ChainEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        kind=row.kind,
        actor_staff_id=row.actor_staff_id,
        actor_org_id=row.actor_org_id,
        actor_person_id=row.actor_person_id,
        source=row.source,
        channel=row.channel,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        person_id=row.person_id,
        detail=row.detail if row.detail is not None else {},
        chain_seq=chain_seq,
    )


def lock_head(s: Session) -> tuple[int, str]:
    """Lock the chain head for this transaction; its last seq and hash."""
    q = select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(
        AuditChainHead.id == HEAD_ID
    )
    if is_postgres(s):
        q = q.with_for_update()
    row = s.execute(q).first()
    if row is None:
        # The migration writes the row; a database emptied by hand gets it back.
        values = {"id": HEAD_ID, "last_seq": 0, "last_hash": GENESIS}
        dialect_insert = postgresql.insert if is_postgres(s) else sqlite.insert
        s.execute(dialect_insert(AuditChainHead).values(values).on_conflict_do_nothing())
        row = s.execute(q).one()
    return int(row.last_seq), str(row.last_hash)


_T = table(AuditRecord)
# ``occurred_at`` picks the entry's month partition on PostgreSQL.
_SEAL = (
    update(_T)
    .where(_T.c.id == bindparam("b_id"), _T.c.occurred_at == bindparam("b_at", type_=UTCDateTime()))
    .where(_T.c.chain_seq.is_(None))
    .values(
        chain_seq=bindparam("b_seq"),
        prev_hash=bindparam("b_prev", type_=ChainHash()),
        entry_hash=bindparam("b_hash", type_=ChainHash()),
    )
)


def seal_batch(s: Session, *, key: bytes, now: datetime, size: int = SEAL_BATCH) -> int:
    """Seal up to ``size`` of the oldest unsealed entries in the caller's transaction."""
    last_seq, last_hash = lock_head(s)
    rows = s.execute(
        select(*ENTRY_COLUMNS)
        .where(AuditRecord.chain_seq.is_(None))
        .order_by(AuditRecord.id)
        .limit(size)
    ).all()
    if not rows:
        return 0
    entries = [entry_of(row, last_seq + i) for i, row in enumerate(rows, start=1)]
    sealed = link(key, last_seq=last_seq, last_hash=last_hash, entries=entries)
    result = s.execute(
        _SEAL,
        [
            {
                "b_id": x.id,
                "b_at": row.occurred_at,
                "b_seq": x.chain_seq,
                "b_prev": x.prev_hash,
                "b_hash": x.entry_hash,
            }
            for x, row in zip(sealed, rows, strict=True)
        ],
    )
    changed = int(result.rowcount)  # type: ignore[attr-defined]
    if changed not in (-1, len(sealed)):  # -1: the driver does not count executemany
        raise RuntimeError(f"sealing changed {changed} of {len(sealed)} entries; rolled back")
    s.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(last_seq=sealed[-1].chain_seq, last_hash=sealed[-1].entry_hash, sealed_at=now)
    )
    return len(sealed)


def seal_job(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """The sweeper's job: seal one batch (its own size, the sweeper's is for deadlines)."""
    return seal_batch(s, key=load_key(KEY_NAME), now=now, size=max(size, SEAL_BATCH))


def seal(rt: Runtime, *, batch_size: int = SEAL_BATCH) -> int:
    """Seal every entry waiting for it, one transaction per batch; how many were sealed."""
    key = load_key(KEY_NAME)
    total = 0
    while True:
        with rt.uow() as uow:
            done = seal_batch(uow.session, key=key, now=rt.now(), size=batch_size)
            uow.commit()
        total += done
        if done < batch_size:
            return total
