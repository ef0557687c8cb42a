"""Verifying the audit chain: every hash recomputed, in batches, in constant memory.

The head is read first; the entries up to its seq never change (append-only), so each
batch is its own short read and no long transaction holds back writers. The walk stops
at the first broken entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sscard.audit.chain import GENESIS, KEY_NAME, Break, Problem, check_link
from sscard.audit.sealer import ENTRY_COLUMNS, HEAD_ID, entry_of
from sscard.audit.tables import AuditChainHead, AuditRecord
from sscard.core.errors import InvalidInput
from sscard.core.keys import load_key
from sscard.runtime import Runtime

VERIFY_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Verification:
    """What a walk of the chain found."""

    from_seq: int
    sealed: int  # entries the chain head says are sealed
    head_hash: str
    checked: int  # entries recomputed and found intact
    last_checked_seq: int | None
    unsealed: int  # entries waiting for the sealer
    complete: bool  # the walk reached the head (not stopped by ``limit`` or a break)
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def _head(s: Session) -> tuple[int, str]:
    row = s.execute(
        select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(
            AuditChainHead.id == HEAD_ID
        )
    ).first()
    return (int(row.last_seq), str(row.last_hash)) if row else (0, GENESIS)


def _stored_hash(s: Session, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    value = s.scalar(select(AuditRecord.entry_hash).where(AuditRecord.chain_seq == seq))
    return None if value is None else str(value)


def _unsealed(s: Session) -> int:
    return int(
        s.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.chain_seq.is_(None))
        )
        or 0
    )


def _beyond(s: Session, head_seq: int) -> Break | None:
    """An entry with a seq past the head was not sealed by a sealer."""
    row = s.execute(
        select(*ENTRY_COLUMNS, AuditRecord.chain_seq)
        .where(AuditRecord.chain_seq > head_seq)
        .order_by(AuditRecord.chain_seq)
        .limit(1)
    ).first()
    if row is None:
        return None
    return Break(
        row.chain_seq,
        row.id,
        row.occurred_at,
        row.action,
        Problem.HEAD_MISMATCH,
        f"its seq is past the chain head (seq {head_seq}): no sealer wrote it",
    )


def verify(
    rt: Runtime, *, from_seq: int = 1, limit: int | None = None, batch_size: int = VERIFY_BATCH
) -> Verification:
    """Walk the chain from ``from_seq`` (at most ``limit`` entries) and name the first break."""
    if from_seq < 1:
        raise InvalidInput("from_seq starts at 1", field="from_seq")
    if limit is not None and limit < 1:
        raise InvalidInput("limit must be at least 1", field="limit")
    key = load_key(KEY_NAME)
    with rt.uow() as uow:
        head_seq, head_hash = _head(uow.session)
        expected_prev = _stored_hash(uow.session, from_seq - 1) if from_seq <= head_seq else None
    end = head_seq if limit is None else min(head_seq, from_seq + limit - 1)
    expected = from_seq
    checked = 0
    broken: Break | None = None
    last: tuple[int, str | None] | None = None  # (seq, stored hash) of the last entry seen
    while expected <= end and broken is None:
        with rt.uow() as uow:
            rows = uow.session.execute(
                select(
                    *ENTRY_COLUMNS,
                    AuditRecord.chain_seq,
                    AuditRecord.prev_hash,
                    AuditRecord.entry_hash,
                )
                .where(AuditRecord.chain_seq >= expected, AuditRecord.chain_seq <= end)
                .order_by(AuditRecord.chain_seq)
                .limit(batch_size)
            ).all()
        if not rows:
            break
        for row in rows:
            broken = check_link(
                key,
                entry_of(row, row.chain_seq),
                prev_hash=row.prev_hash,
                stored_hash=row.entry_hash,
                expected_seq=expected,
                expected_prev=expected_prev,
            )
            if broken is not None:
                break
            checked += 1
            expected = row.chain_seq + 1
            expected_prev = row.entry_hash
            last = (row.chain_seq, row.entry_hash)
    with rt.uow() as uow:
        if broken is None and end == head_seq:
            broken = _tail_break(uow.session, head_seq, head_hash, last, from_seq)
        if broken is None:
            # Re-read the head: a sealer may have moved it on since the walk began.
            broken = _beyond(uow.session, max(head_seq, _head(uow.session)[0]))
        unsealed = _unsealed(uow.session)
    return Verification(
        from_seq=from_seq,
        sealed=head_seq,
        head_hash=head_hash,
        checked=checked,
        last_checked_seq=last[0] if last else None,
        unsealed=unsealed,
        complete=broken is None and end == head_seq,
        broken=broken,
    )


def _tail_break(
    s: Session,
    head_seq: int,
    head_hash: str,
    last: tuple[int, str | None] | None,
    from_seq: int,
) -> Break | None:
    """The walk reached the head's seq: its last entry must be the head's."""
    if from_seq > head_seq or last == (head_seq, head_hash):
        return None
    last_seq = last[0] if last else from_seq - 1
    if last_seq != head_seq:
        return Break(
            last_seq + 1,
            None,
            None,
            None,
            Problem.GAP,
            f"entries {last_seq + 1} to {head_seq} are missing (the chain head is at {head_seq})",
        )
    row = s.execute(select(*ENTRY_COLUMNS).where(AuditRecord.chain_seq == head_seq)).one()
    return Break(
        head_seq,
        row.id,
        row.occurred_at,
        row.action,
        Problem.HEAD_MISMATCH,
        "the chain head records another hash for this entry",
    )
