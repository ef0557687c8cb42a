"""The access log: who looked at a person's record, and the holder's view of it.

Every answer that shows a person's record is logged before a byte of it leaves, and
fails closed: if the entry cannot be written the record is not shown. ``InquiryLog``
writes the entries. In the server it group-commits: one writer thread takes the entries
of every request waiting at that moment and writes them with one INSERT and one COMMIT,
then releases those requests; each request still waits for its own entry to be durable.
Elsewhere (the CLI, the tests) it writes each request's entries in a short transaction.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.applications.tables import Application
from sscard.audit.model import AuditKind
from sscard.audit.service import AuditRow, record_rows
from sscard.audit.tables import AuditRecord
from sscard.cards.tables import Card
from sscard.core.errors import DomainError
from sscard.core.pagination import Page, check_limit, decode_cursor
from sscard.db.engine import SessionFactory, UnitOfWork
from sscard.register.tables import Organization
from sscard.runtime import Runtime

log = logging.getLogger("sscard.audit.access_log")

Read = tuple[str, str, int]
"""One record read: (what was read, kind of id: person, card or application, id)."""


class AccessLogUnavailable(DomainError):
    code = "access_log_unavailable"
    status = 503
    title = "Access log unavailable"

    def __init__(self) -> None:
        super().__init__(
            "the access log could not be written, so the record is not shown; try again shortly",
            retry_after=1,
        )


@dataclass(frozen=True, slots=True)
class Inquiry:
    """One request's reads of persons' records, to be logged."""

    actor: Actor
    at: datetime
    action: str
    route: str
    reads: tuple[Read, ...]
    # Whose card or form each read one is, where the use case already knew it.
    owners: Mapping[tuple[str, int], int] = field(default_factory=dict)


def _persons(s: Session, inquiries: Iterable[Inquiry]) -> list[dict[int, set[str]]]:
    """For each inquiry, each person whose record it read, with what of it; cards and
    forms are resolved to their persons with one query per table for all inquiries."""
    cards: set[int] = set()
    forms: set[int] = set()
    batch = list(inquiries)
    owner: dict[tuple[str, int], int] = {}
    for inquiry in batch:
        owner.update(inquiry.owners)
        for _, key, value in inquiry.reads:
            if (key, value) not in owner:
                (cards if key == "card" else forms if key == "application" else set()).add(value)
    for key, table, ids in (("card", Card, cards), ("application", Application, forms)):
        if ids:
            rows = s.execute(select(table.id, table.person_id).where(table.id.in_(list(ids))))
            owner.update({(key, row_id): person_id for row_id, person_id in rows.all()})
    found: list[dict[int, set[str]]] = []
    for inquiry in batch:
        persons: dict[int, set[str]] = {}
        for what, key, value in inquiry.reads:
            person_id = value if key == "person" else owner.get((key, value))
            if person_id is not None:
                persons.setdefault(person_id, set()).add(what)
        # A cardholder reading their own record is not someone looking at them.
        if inquiry.actor.person_id is not None:
            persons.pop(inquiry.actor.person_id, None)
        found.append(persons)
    return found


def write_inquiries(s: Session, inquiries: list[Inquiry]) -> int:
    """Add one inquiry record per person read by each inquiry, in one INSERT (never
    commits); how many records."""
    rows = [
        AuditRow(
            actor=inquiry.actor,
            at=inquiry.at,
            action=inquiry.action[:48],
            subject_type="person",
            subject_id=person_id,
            person_id=person_id,
            channel="api",
            detail={"route": inquiry.route, "what": sorted(what)},
            kind=AuditKind.INQUIRY,
        )
        for inquiry, persons in zip(inquiries, _persons(s, inquiries), strict=True)
        for person_id, what in sorted(persons.items())
    ]
    record_rows(s, rows)
    return len(rows)


def log_inquiries(rt: Runtime, *, actor: Actor, action: str, route: str, reads: list[Read]) -> int:
    """Write one inquiry record per person read, in one short transaction; their number."""
    if not reads:
        return 0
    with rt.uow() as uow:
        n = write_inquiries(uow.session, [Inquiry(actor, rt.now(), action, route, tuple(reads))])
        uow.commit()
        return n


@dataclass(eq=False)
@dataclass
class _Waiting:
    inquiry: Inquiry
    written: Future[None] = field(default_factory=Future)


class InquiryLog:
    """Writes the access log for the API; ``grouped``: one writer thread, group commit."""

    def __init__(
        self,
        rt: Runtime,
        *,
        grouped: bool,
        factory: SessionFactory | None = None,
        max_batch: int = 1000,
        wait_seconds: float = 10.0,
    ) -> None:
        self.rt = rt
        self.grouped = grouped
        self._factory = factory or rt.session_factory
        self._max_batch = max_batch
        self.wait_seconds = wait_seconds
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(
        self,
        *,
        actor: Actor,
        action: str,
        route: str,
        reads: list[Read],
        owners: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Log the reads, or raise AccessLogUnavailable: the answer is then not shown.

        Grouped, the entries wait for the writer, which commits many requests' entries at
        once; else they are written in a short transaction of their own.
        """
        if not reads:
            return
        inquiry = Inquiry(actor, self.rt.now(), action, route, tuple(reads), owners or {})
        if not self.grouped:
            try:
                with UnitOfWork(self._factory) as uow:
                    write_inquiries(uow.session, [inquiry])
                    uow.commit()
            except Exception as exc:
                log.error("access log write failed at %s: %s", route, type(exc).__name__)
                raise AccessLogUnavailable from None
            return
        try:
            self._submit(inquiry).result(self.wait_seconds)
        except Exception:
            raise AccessLogUnavailable from None

    def submit(
        self,
        *,
        actor: Actor,
        action: str,
        route: str,
        reads: list[Read],
        owners: Mapping[tuple[str, int], int] | None = None,
    ) -> Future[None]:
        """Hand the reads to the grouped writer; the future completes once they are
        committed (or fails: the answer is then not shown). For callers that must not
        block while the entries are written (a worker's event loop)."""
        inquiry = Inquiry(actor, self.rt.now(), action, route, tuple(reads), owners or {})
        return self._submit(inquiry)

    def _submit(self, inquiry: Inquiry) -> Future[None]:
        waiting = _Waiting(inquiry)
        self._start()
        self._queue.put(waiting)
        return waiting.written

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sscard-access-log", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._flush(batch)

    def _flush(self, batch: list[_Waiting]) -> None:
        try:
            with UnitOfWork(self._factory) as uow:
                write_inquiries(uow.session, [w.inquiry for w in batch])
                uow.commit()
        except Exception as exc:  # fail closed: none of these answers is shown
            log.error(
                "access log group write failed (%d requests): %s", len(batch), type(exc).__name__
            )
            for w in batch:
                w.written.set_exception(AccessLogUnavailable())
            return
        for w in batch:
            w.written.set_result(None)


@dataclass(frozen=True)
class Look:
    """One entry of a holder's access log."""

    id: int
    at: datetime
    kind: str
    organization_name: str | None
    organization_kind: str
    action: str
    subject_type: str
    what: list[str]


def access_log(s: Session, *, person_id: int, after: str | None, limit: int) -> Page[Look]:
    """Who inquired, changed or saw in full the person's record: newest first, by cursor.

    One lookup per kind on the ``person_id`` index (a person has few entries, sorted by
    id and cut at a page), merged here; then the page's organizations.
    """
    check_limit(limit)
    cursor = decode_cursor(after)
    rows: list[AuditRecord] = []
    for kind in AuditKind:
        q = select(AuditRecord).where(
            AuditRecord.person_id == person_id,
            AuditRecord.kind == kind.value,
            # The holder's own acts in self-service are not someone else looking.
            (AuditRecord.actor_person_id.is_(None)) | (AuditRecord.actor_person_id != person_id),
        )
        if cursor:
            q = q.where(AuditRecord.id < cursor)
        rows += s.scalars(q.order_by(AuditRecord.id.desc()).limit(limit + 1))
    rows = sorted(rows, key=lambda r: r.id, reverse=True)[: limit + 1]
    org_ids = {r.actor_org_id for r in rows if r.actor_org_id is not None}
    orgs = (
        {
            org_id: (name, kind)
            for org_id, name, kind in s.execute(
                select(Organization.id, Organization.name, Organization.kind).where(
                    Organization.id.in_(org_ids)
                )
            ).all()
        }
        if org_ids
        else {}
    )
    looks = [
        Look(
            id=r.id,
            at=r.occurred_at,
            kind=r.kind,
            organization_name=orgs.get(r.actor_org_id or 0, (None, None))[0],
            organization_kind=orgs.get(r.actor_org_id or 0, (None, "system"))[1],
            action=r.action,
            subject_type=r.subject_type,
            what=list((r.detail or {}).get("what", [r.subject_type])),
        )
        for r in rows
    ]
    return Page.of(looks, limit, key=lambda look: look.id)
