"""The deadline sweeper: applies every due deadline exactly once, in set-based batches.

Each job selects a batch of due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
sweepers running at once split the work), updates them with a guard that re-checks
the due condition, and writes transition and audit rows only for the rows the update
really changed. Each batch is one transaction.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, select, update
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM
from sscard.access.tables import AuthSession
from sscard.applications.model import BatchState
from sscard.applications.tables import Batch
from sscard.audit.partitions import partitions_job
from sscard.audit.sealer import seal_job
from sscard.audit.service import record_many
from sscard.cards.model import Action, CardState, add_months, decide_move, sources_of
from sscard.cards.tables import Card
from sscard.cards.transitions import CardMovePlan, write_moves
from sscard.core.clock import start_of_local_day
from sscard.db.engine import is_postgres
from sscard.db.idempotency import IdempotencyRecord
from sscard.events.fanout import prune_events
from sscard.register.model import OldCardState
from sscard.register.tables import Person
from sscard.runtime import Runtime

log = logging.getLogger("sscard.sweeper")
# A batch is one transaction; 5,000 rows keep its memory small and its statements few.
DEFAULT_BATCH = 5000


@dataclass
class SweepReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, job: str, n: int) -> None:
        self.counts[job] = self.counts.get(job, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _due_ids(s: Session, model: Any, condition: ColumnElement[bool], size: int) -> list[int]:
    q = select(model.id).where(condition).order_by(model.id).limit(size)
    if is_postgres(s):
        q = q.with_for_update(skip_locked=True)
    return list(s.scalars(q))


def _guarded_update(
    s: Session,
    model: Any,
    ids: list[int],
    condition: ColumnElement[bool],
    values: dict[str, Any],
    *returning: Any,
) -> Sequence[Row[Any]]:
    """Update the locked rows that are still due (the guard re-checks ``condition``, so a
    deadline applies once) and bump their version; the updated rows' ``returning``."""
    return s.execute(
        update(model)
        .where(model.id.in_(ids), condition)
        .values(**values, version=model.version + 1)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    ).all()


def _prune(s: Session, model: Any, condition: ColumnElement[bool], size: int) -> int:
    """Delete up to ``size`` locked rows that are due (the guard re-checks ``condition``);
    how many went."""
    ids = _due_ids(s, model, condition, size)
    if not ids:
        return 0
    result = s.execute(
        delete(model)
        .where(model.id.in_(ids), condition)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _card_job(
    s: Session,
    rt: Runtime,
    *,
    now: datetime,
    condition: ColumnElement[bool],
    action: Action,
    reason: str,
    size: int,
    order: Any,
    extra: dict[str, Any] | None = None,
) -> int:
    """Move one batch of due cards: the move rule decides each card's effects, the card
    move writer records them all at once (one UPDATE, one INSERT each
    for transitions, audit records and partner events, one message to the bank)."""
    due: list[Any] = []
    for source in sources_of(action):
        # In the order of the (state, due column) index: a batch reads only due rows,
        # not the ones earlier batches moved (ORDER BY id would walk past them all).
        q = (
            select(
                Card.id,
                Card.person_id,
                Card.state,
                Card.state_before_loss,
                Card.bank_code,
                Card.serial,
            )
            .where(Card.state == source.value, condition)
            .order_by(order)
            .limit(size - len(due))
        )
        if is_postgres(s):
            q = q.with_for_update(skip_locked=True)
        due += s.execute(q).all()
        if len(due) >= size:
            break
    if not due:
        return 0
    plans = [
        CardMovePlan(
            card_id=r.id,
            person_id=r.person_id,
            bank_code=r.bank_code,
            serial=r.serial,
            # The bank knows its account by card id; the number is only for production.
            bank_card_number=None,
            effect=decide_move(
                CardState(r.state),
                action,
                CardState(r.state_before_loss) if r.state_before_loss else None,
                at=now,
            ),
        )
        for r in due
    ]
    written = write_moves(
        s, plans, rt=rt, actor=SYSTEM, at=now, channel="system", reason_code=reason, extra=extra
    )
    return len(written.moves)


Job = Callable[[Session, Runtime, datetime, int], int]


def lapse_oral_reports(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """L-1: an oral report not followed by a written one lapses; the card resumes."""
    return _card_job(
        s,
        rt,
        now=now,
        size=size,
        action=Action.ORAL_REPORT_LAPSE,
        condition=Card.oral_loss_lapses_at <= now,
        order=Card.oral_loss_lapses_at,
        reason="oral_report_lapsed",
    )


def auto_report_lost(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """V-5: financial application not activated within 300 days of receipt."""
    cutoff = now - timedelta(days=rt.policy.deadlines.financial_activation_days)
    return _card_job(
        s,
        rt,
        now=now,
        size=size,
        action=Action.AUTO_REPORT_LOST,
        condition=and_(Card.financial_activated_at.is_(None), Card.received_at <= cutoff),
        order=Card.received_at,
        reason="financial_not_activated_in_time",
    )


def destroy_unclaimed(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """D-2: a card unclaimed at the bank for more than 180 days is destroyed."""
    cutoff = now - timedelta(days=rt.policy.deadlines.unclaimed_destroy_days)
    return _card_job(
        s,
        rt,
        now=now,
        size=size,
        action=Action.DESTROY_UNCLAIMED,
        condition=Card.at_outlet_since < cutoff,
        order=Card.at_outlet_since,
        extra={"at_outlet_since": None},
        reason="unclaimed_180_days",
    )


def restrict_old_cards(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """V-4: not activated within half a year of receipt → the old medical card is restricted."""
    cutoff_day = add_months(rt.today(), -rt.policy.deadlines.old_card_restrict_months)
    cutoff = start_of_local_day(cutoff_day, rt.tz)
    condition = and_(
        Card.state == CardState.RECEIVED.value,
        Card.received_at < cutoff,
        Card.old_card_restricted_at.is_(None),
    )
    ids = _due_ids(s, Card, condition, size)
    if not ids:
        return 0
    rows = _guarded_update(
        s, Card, ids, condition, {"old_card_restricted_at": now}, Card.id, Card.person_id
    )
    card_of = {r.person_id: r.id for r in rows}
    restricted = (
        s.execute(
            update(Person)
            .where(
                Person.id.in_(list(card_of)),
                Person.old_medical_card_state == OldCardState.NORMAL.value,
            )
            .values(
                old_medical_card_state=OldCardState.RESTRICTED.value,
                version=Person.version + 1,
                updated_at=now,
            )
            .returning(Person.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    # Audit only the persons whose old card really was restricted.
    record_many(
        s,
        actor=SYSTEM,
        at=now,
        action="person.old_medical_card_restricted",
        subject_type="card",
        channel="system",
        entries=(
            (card_of[person_id], person_id, {"reason": "not_activated_within_half_a_year"})
            for person_id in restricted
        ),
    )
    return len(rows)


def flag_overdue_handouts(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """A-2 step 8: a unit that has not handed a card out within 5 working days is reminded."""
    condition = and_(
        Card.state == CardState.WITH_UNIT.value,
        Card.handout_due < rt.today(),
        Card.handout_overdue_at.is_(None),
    )
    ids = _due_ids(s, Card, condition, size)
    if not ids:
        return 0
    rows = _guarded_update(
        s,
        Card,
        ids,
        condition,
        {"handout_overdue_at": now},
        Card.id,
        Card.person_id,
        Card.unit_org_id,
    )
    record_many(
        s,
        actor=SYSTEM,
        at=now,
        action="card.handout_overdue",
        subject_type="card",
        channel="system",
        entries=((r.id, r.person_id, {"unit_org_id": r.unit_org_id}) for r in rows),
    )
    return len(rows)


def flag_overdue_batches(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """A-2 step 5: forms not returned within the set time are flagged for the service point."""
    condition = and_(
        Batch.state == BatchState.ISSUED.value,
        Batch.return_due < rt.today(),
        Batch.overdue_at.is_(None),
    )
    ids = _due_ids(s, Batch, condition, size)
    if not ids:
        return 0
    rows = _guarded_update(s, Batch, ids, condition, {"overdue_at": now}, Batch.id)
    record_many(
        s,
        actor=SYSTEM,
        at=now,
        action="batch.return_overdue",
        subject_type="batch",
        channel="system",
        entries=((r.id, None, {}) for r in rows),
    )
    return len(rows)


IDEMPOTENCY_KEEP = timedelta(days=1)


def prune_idempotency_keys(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """Forget Idempotency-Keys after a day: retries come within minutes, not days."""
    return _prune(s, IdempotencyRecord, IdempotencyRecord.created_at < now - IDEMPOTENCY_KEEP, size)


def prune_outbox(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """Forget delivered partner events after the retention period (the replay window)."""
    return prune_events(s, now, size)


SESSIONS_KEEP = timedelta(days=1)


def prune_sessions(s: Session, rt: Runtime, now: datetime, size: int) -> int:
    """Delete login sessions a day after their lifetime ran out (ended ones included)."""
    return _prune(s, AuthSession, AuthSession.expires_at < now - SESSIONS_KEEP, size)


JOBS: dict[str, Job] = {
    "oral_report_lapsed": lapse_oral_reports,
    "auto_reported_lost": auto_report_lost,
    "unclaimed_destroyed": destroy_unclaimed,
    "old_card_restricted": restrict_old_cards,
    "handout_overdue": flag_overdue_handouts,
    "form_return_overdue": flag_overdue_batches,
    "idempotency_keys_pruned": prune_idempotency_keys,
    "sessions_pruned": prune_sessions,
    "events_pruned": prune_outbox,
    "audit_partitions_added": partitions_job,
    # Last, so that it also seals the audit records of the jobs above.
    "audit_sealed": seal_job,
}


def sweep(
    rt: Runtime,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> SweepReport:
    """Apply every due deadline; each batch commits on its own."""
    report = SweepReport()
    now = rt.now()
    for name, job in JOBS.items():
        report.add(name, 0)
        while True:
            with rt.uow() as uow:
                done = job(uow.session, rt, now, batch_size)
                uow.commit()
            report.add(name, done)
            if progress and done:
                progress(name, done)
            if done < batch_size:
                break
    if report.total:
        log.info("sweep applied %s", {k: v for k, v in report.counts.items() if v})
    return report


class SweeperThread(threading.Thread):
    """Runs the sweeper inside the server every ``interval`` seconds."""

    def __init__(self, rt: Runtime, interval: float) -> None:
        super().__init__(name="sscard-sweeper", daemon=True)
        self.rt = rt
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                sweep(self.rt)
            except Exception as exc:  # keep the server's sweeper alive; the next run retries
                # Type and place only: a message could carry personal data.
                frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
                where = f"{frame.filename}:{frame.lineno}" if frame else "?"
                log.error(
                    "sweep failed (%s at %s); retrying at the next interval",
                    type(exc).__name__,
                    where,
                )

    def stop(self) -> None:
        self.stopped.set()
