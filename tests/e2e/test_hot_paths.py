"""The counters' calls, as the server runs them: one unit of work each, few statements.

A settlement is one transaction (the actor, the card and password locked, the money
moved, the audit record and the Idempotency-Key's answer, one COMMIT); a card check and a
Q-1 inquiry run outside any transaction, their access-log entries committed by the
statement that writes them. Real commits on PostgreSQL, counted at the driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text, update

from sscard.accounts.inquiry import _ACCOUNTS
from sscard.accounts.ledger import INSTITUTION_SHARDS, check
from sscard.accounts.model import AccountKind
from sscard.accounts.tables import LedgerAccount
from sscard.api.app import create_app
from sscard.api.unit import UnitRoute
from sscard.audit.tables import AuditRecord
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from sscard.runtime import Runtime
from tests.e2e.test_access_log import _refuse_inquiries
from tests.factories import World
from tests.integration.test_accounts import PIN, credit, ready_card


@dataclass
class Seen:
    """What reached the database: statements, and COMMIT/ROLLBACK of real transactions (a
    connection in AUTOCOMMIT sends none: each statement commits itself)."""

    statements: list[str] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0


def _transactional(conn: Any) -> bool:
    return bool(conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT")


@contextmanager
def counted(engine: Engine) -> Iterator[Seen]:
    seen = Seen()

    def on_execute(*args: Any) -> None:
        seen.statements.append(str(args[2]).split()[0].upper())

    def on_commit(conn: Any) -> None:
        seen.commits += _transactional(conn)

    def on_rollback(conn: Any) -> None:
        seen.rollbacks += _transactional(conn)

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "rollback", on_rollback)


@pytest.fixture
def live(committed_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(
        create_app(committed_rt, sweep_interval=0, group_access_log=True),
        raise_server_exceptions=False,
    ) as client:
        yield client


def _bearer(world: World, kind: OrgKind) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(kind)}"}


def test_c_4_a_settlement_is_one_transaction_of_few_statements(
    committed_rt: Runtime, pg_engine: Engine, live: TestClient
) -> None:
    world = World(committed_rt)
    card = ready_card(world, balance=5_000)
    headers = {**_bearer(world, OrgKind.HOSPITAL), "Idempotency-Key": "visit-1"}
    body = {
        "card_number": card.card_number,
        "kind": "outpatient",
        "amount_fen": 700,
        "password": PIN,
    }
    live.post("/settlements", headers={**headers, "Idempotency-Key": "warm"}, json=body)
    with counted(pg_engine) as seen:
        paid = live.post("/settlements", headers=headers, json=body)
    assert paid.status_code == 201, paid.text
    assert paid.json()["balance_fen"] == 3_600
    assert (seen.commits, seen.rollbacks) == (1, 0)
    # The bearer value, the Idempotency-Key, the card and its password (one statement,
    # both rows locked), two balance moves, the transaction and its entries, the audit
    # record and its partner event, the key's answer.
    assert len(seen.statements) <= 11, seen.statements
    with counted(pg_engine) as again:
        replay = live.post("/settlements", headers=headers, json=body)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["replayed"] is True
    assert replay.json()["transaction_id"] == paid.json()["transaction_id"]
    assert "UPDATE" not in again.statements  # nothing moved twice


def test_s_1_a_card_check_and_an_inquiry_run_outside_any_transaction(
    committed_rt: Runtime, pg_engine: Engine, live: TestClient
) -> None:
    world = World(committed_rt)
    card = ready_card(world, balance=5_000)
    check_at = _bearer(world, OrgKind.HOSPITAL)
    live.post("/card-checks", headers=check_at, json={"card_number": card.card_number})
    with counted(pg_engine) as seen:
        checked = live.post(
            "/card-checks", headers=check_at, json={"card_number": card.card_number}
        )
    assert checked.json()["usable"] is True
    # The bearer value and the card, outside any transaction; the access-log entry goes
    # to the worker's writer, which commits it (with other requests' entries, under load)
    # before the answer leaves.
    assert seen.statements == ["SELECT", "SELECT", "INSERT"], seen.statements
    assert (seen.commits, seen.rollbacks) == (1, 0)
    person = world.reload(card).person_id
    with committed_rt.uow() as uow:
        logged = uow.session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.person_id == person, AuditRecord.kind == "inquiry")
        )
    assert logged == 2  # each check is in the holder's access log
    with world.rt.uow() as uow:
        holder = uow.session.get(Person, person)
        assert holder is not None
    window = _bearer(world, OrgKind.BUREAU_WINDOW)
    live.post("/medical-accounts/inquiries", headers=window, json={"id_number": holder.id_number})
    with counted(pg_engine) as asked:
        answer = live.post(
            "/medical-accounts/inquiries", headers=window, json={"id_number": holder.id_number}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance_fen"] == 5_000
    assert (asked.commits, asked.rollbacks) == (1, 0), asked.statements
    # The bearer value, the holder, the accounts, the entries, the contributions, the
    # access-log entry.
    assert asked.statements == ["SELECT"] * 5 + ["INSERT"], asked.statements


def test_c_2_the_card_check_and_a_payment_refuse_an_expired_card_alike(
    committed_rt: Runtime, live: TestClient
) -> None:
    world = World(committed_rt)
    card = ready_card(world, balance=5_000)
    with world.rt.uow() as uow:
        uow.session.execute(
            update(Card)
            .where(Card.id == card.id)
            .values(valid_until=world.rt.today() - timedelta(days=1))
        )
        uow.commit()
    checked = live.post(
        "/card-checks",
        headers=_bearer(world, OrgKind.HOSPITAL),
        json={"card_number": card.card_number},
    ).json()
    assert checked["usable"] is False
    assert "expired" in checked["reason"]
    refused = live.post(
        "/settlements",
        headers={**_bearer(world, OrgKind.HOSPITAL), "Idempotency-Key": "expired"},
        json={
            "card_number": card.card_number,
            "kind": "outpatient",
            "amount_fen": 100,
            "password": PIN,
        },
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "card_not_usable")
    assert checked["reason"] in refused.json()["detail"]


def test_c_4_one_hospital_s_payments_spread_over_its_sub_accounts(
    committed_rt: Runtime, pg_engine: Engine, live: TestClient
) -> None:
    world = World(committed_rt)
    hospital = _bearer(world, OrgKind.HOSPITAL)
    cards = [ready_card(world, balance=1_000) for _ in range(INSTITUTION_SHARDS * 2)]
    for i, card in enumerate(cards):
        paid = live.post(
            "/settlements",
            headers={**hospital, "Idempotency-Key": f"spread-{i}"},
            json={
                "card_number": card.card_number,
                "kind": "outpatient",
                "amount_fen": 10 + i,
                "password": PIN,
            },
        )
        assert paid.status_code == 201, paid.text
    with committed_rt.uow() as uow:
        rows = uow.session.execute(
            select(LedgerAccount.shard, LedgerAccount.balance_fen).where(
                LedgerAccount.kind == AccountKind.INSTITUTION.value
            )
        ).all()
        assert check(uow.session) == []  # every sub-account is the sum of its entries
    assert len({shard for shard, _ in rows}) > 1
    assert sum(balance for _, balance in rows) == sum(10 + i for i in range(len(cards)))


def test_every_route_of_the_api_runs_in_its_request_s_unit_of_work(
    committed_rt: Runtime,
) -> None:
    app = create_app(committed_rt, sweep_interval=0)
    outside = {
        getattr(route, "path", "") for route in app.routes if not isinstance(route, UnitRoute)
    }
    assert outside == {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_v_1_a_first_use_and_its_password_are_one_transaction_too(
    committed_rt: Runtime, pg_engine: Engine, live: TestClient
) -> None:
    world = World(committed_rt)
    card = world.card(CardState.RECEIVED)
    credit(world, card.person_id, 2_000)
    hospital = {**_bearer(world, OrgKind.HOSPITAL), "Idempotency-Key": "first"}
    with counted(pg_engine) as seen:
        paid = live.post(
            "/settlements",
            headers=hospital,
            json={
                "card_number": card.card_number,
                "kind": "outpatient",
                "amount_fen": 500,
                "new_password": PIN,
            },
        )
    assert paid.status_code == 201, paid.text
    assert paid.json()["activated"] is True
    assert (seen.commits, seen.rollbacks) == (1, 0)
    assert world.reload(card).state == CardState.ACTIVE


def test_the_fast_lane_answers_exactly_as_the_framework_would(
    committed_rt: Runtime, live: TestClient
) -> None:
    """The counters' calls go past the framework's request handling; their refusals are
    the framework's own (the same body and header validation), and what the lane does
    not take (another content type, a body too large for a counter) goes the usual way."""
    world = World(committed_rt)
    card = ready_card(world, balance=1_000)
    hospital = _bearer(world, OrgKind.HOSPITAL)
    json_type = {"content-type": "application/json"}
    bodies: list[tuple[bytes, dict[str, str]]] = [
        (b"{not json", json_type),
        (orjson.dumps({"card_number": card.card_number, "surprise": 1}), json_type),
        (b"[]", json_type),
        (b"", json_type),
        (b"card_number=A1", {"content-type": "text/plain"}),
        (orjson.dumps({"card_number": card.card_number, "pad": "x" * 70_000}), json_type),
    ]
    for content, kind in bodies:
        answer = live.post("/card-checks", headers={**hospital, **kind}, content=content)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "invalid_input"
    too_long = {**hospital, "Idempotency-Key": "k" * 256}
    body = {"card_number": card.card_number, "kind": "outpatient", "amount_fen": 1, "password": PIN}
    refused = live.post("/settlements", headers=too_long, json=body)
    assert (refused.status_code, refused.json()["field"]) == (422, "Idempotency-Key")
    anonymous = live.post("/card-checks", json={"card_number": card.card_number})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")


def test_s_1_a_card_check_whose_access_log_entry_fails_shows_nothing(
    committed_rt: Runtime, pg_engine: Engine, live: TestClient
) -> None:
    world = World(committed_rt)
    card = ready_card(world, balance=5_000)
    check_at = _bearer(world, OrgKind.HOSPITAL)
    with pg_engine.begin() as conn:
        _refuse_inquiries(conn)
    try:
        refused = live.post(
            "/card-checks", headers=check_at, json={"card_number": card.card_number}
        )
    finally:
        with pg_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER no_inquiries ON audit_records"))
            conn.execute(text("DROP FUNCTION no_inquiries()"))
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "access_log_unavailable"
    assert "usable" not in refused.json()
    assert refused.headers["Retry-After"] == "1"
    again = live.post("/card-checks", headers=check_at, json={"card_number": card.card_number})
    assert again.json()["usable"] is True  # the writer goes on once the database takes it


def test_q_1_the_holders_accounts_are_found_by_an_index(pg_engine: Engine) -> None:
    statement = _ACCOUNTS.statement.params(person_id=1)
    sql = str(statement.compile(pg_engine, compile_kwargs={"literal_binds": True}))
    with pg_engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # a scan only where no index serves
        plan = "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())
    assert "Seq Scan" not in plan, plan
    assert "uq_ledger_accounts_person" in plan, plan
