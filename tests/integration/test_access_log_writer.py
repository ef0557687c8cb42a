"""The access log's writer: many requests' entries in one commit, and never an answer
without its entry (S-1, the holder's access log)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from sscard.audit.access_log import AccessLogUnavailable, InquiryLog
from sscard.audit.tables import AuditRecord
from sscard.db.engine import make_engine, session_factory
from sscard.register.model import OrgKind
from sscard.runtime import Runtime
from tests.factories import World


def test_s_1_many_requests_entries_are_committed_together_and_all_kept(
    committed_rt: Runtime, pg_engine: Engine
) -> None:
    world = World(committed_rt)
    persons = [world.person() for _ in range(40)]
    actor = world.actor(OrgKind.HOSPITAL)
    log = InquiryLog(committed_rt, grouped=True)
    commits: list[int] = []

    def on_commit(conn: Any) -> None:
        commits.append(1)

    barrier = threading.Barrier(len(persons))
    failures: list[BaseException] = []

    def ask(person_id: int) -> None:
        barrier.wait()
        try:
            log.write(
                actor=actor,
                action="inquiry.test",
                route="POST /card-checks",
                reads=[("card_check", "person", person_id)],
            )
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    event.listen(pg_engine, "commit", on_commit)
    try:
        threads = [threading.Thread(target=ask, args=(p.id,)) for p in persons]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(pg_engine, "commit", on_commit)
        log.stop()
    assert failures == []
    with committed_rt.uow() as uow:
        logged = uow.session.scalar(
            select(func.count(func.distinct(AuditRecord.person_id))).where(
                AuditRecord.kind == "inquiry", AuditRecord.action == "inquiry.test"
            )
        )
    assert logged == len(persons)  # every request's entry is there
    assert len(commits) < len(persons)  # in fewer commits than requests


@pytest.mark.parametrize("grouped", [True, False])
def test_s_1_an_answer_is_not_given_when_its_entry_cannot_be_written(
    committed_rt: Runtime, grouped: bool
) -> None:
    world = World(committed_rt)
    person = world.person()
    gone = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/sscard_no_such_database")
    log = InquiryLog(committed_rt, grouped=grouped, factory=session_factory(gone), wait_seconds=10)
    try:
        with pytest.raises(AccessLogUnavailable) as refused:
            log.write(
                actor=world.actor(OrgKind.HOSPITAL),
                action="inquiry.test",
                route="POST /card-checks",
                reads=[("card_check", "person", person.id)],
            )
    finally:
        log.stop()
        gone.dispose()
    assert refused.value.status == 503
    assert refused.value.extra["retry_after"] == 1
