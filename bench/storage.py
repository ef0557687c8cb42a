"""``python -m bench.storage``: bytes on disk per cardholder after a card's ordinary life.

A scratch PostgreSQL database is migrated; ``--cardholders`` persons are driven through
the project's own services: registered, an individual application issued, corrected,
returned and checked (the card is ordered), the card produced, picked up and activated
at an outlet, the record inquired once at a service point (one access-log entry), and
every fourth card reported lost orally and the report cancelled. After every
``--vacuum-every`` cardholders the background runs as in production: the sweeper
(which also seals the audit trail and makes its month partitions), the event deliverer
and VACUUM ANALYZE (autovacuum's part, so freed space is reused as it would be). At the
end the clock passes the event retention period and the background runs once more;
then each table's size (heap, indexes, TOAST; a partitioned table's partitions summed)
is printed divided by the number of cardholders. The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.engine import Engine, make_url

from bench.run import ADMIN_URL, START, Log, Unreachable, scratch_databases
from sscard.access.model import Actor
from sscard.access.tables import Staff
from sscard.applications import service as applications
from sscard.audit.access_log import log_inquiries
from sscard.audit.verification import verify
from sscard.bootstrap import Service, prepare
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.core.clock import FixedClock
from sscard.core.ids import luhn_complete, make_citizen_id
from sscard.db.engine import make_engine
from sscard.db.migrate import upgrade
from sscard.events.delivery import deliver
from sscard.events.fanout import retention
from sscard.jobs.sweeper import sweep
from sscard.register.model import OrgKind
from sscard.register.service import PersonInput, register_person
from sscard.register.tables import Organization
from sscard.runtime import Runtime

BANK = "ICBC"
LOSS_EVERY = 4  # every fourth card is reported lost orally, then the report cancelled


@dataclass(frozen=True)
class Staffed:
    """The three parties of a card's life, one staff member each."""

    service_point: Actor
    bank: Actor
    outlet: Actor


def _staff(rt: Runtime, org: Organization, kind: OrgKind, bank: str | None) -> Actor:
    with rt.uow() as uow:
        staff = Staff(
            org_id=org.id,
            name=f"operator of {org.code}",
            role="operator",
            token_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
            active=True,
            created_at=rt.now(),
        )
        uow.session.add(staff)
        uow.commit()
        return Actor(
            staff_id=staff.id,
            org_id=org.id,
            org_kind=kind,
            org_code=org.code,
            bank_code=bank,
            name=staff.name,
        )


def _parties(rt: Runtime) -> Staffed:
    with rt.uow() as uow:
        s = uow.session
        bank = s.scalars(select(Organization).where(Organization.code == BANK)).one()
        sp = Organization(
            kind=OrgKind.SERVICE_POINT.value,
            code="SP-STORAGE",
            name="service point",
            created_at=rt.now(),
        )
        outlet = Organization(
            kind=OrgKind.OUTLET.value,
            code="OUT-STORAGE",
            name="outlet",
            parent_id=bank.id,
            bank_code=BANK,
            created_at=rt.now(),
        )
        s.add_all([sp, outlet])
        uow.commit()
    return Staffed(
        service_point=_staff(rt, sp, OrgKind.SERVICE_POINT, None),
        bank=_staff(rt, bank, OrgKind.BANK, BANK),
        outlet=_staff(rt, outlet, OrgKind.OUTLET, BANK),
    )


def _order(rt: Runtime, p: Staffed, n: int) -> int:
    """Register the ``n``-th person and order their card; the card's id."""
    number = make_citizen_id("441900", date(1970, 1, 1) + timedelta(days=n // 900), 100 + n % 900)
    sp = p.service_point
    with rt.uow() as uow:
        person = register_person(
            uow,
            rt,
            actor=sp,
            data=PersonInput(
                number,
                "张三",
                status="unemployed",
                phone="13800138000",
                insured_since=date(2020, 1, 1),
            ),
        )
    with rt.uow() as uow:
        app = applications.issue_individual(uow, rt, actor=sp, person_id=person.id, bank_code=BANK)
    with rt.uow() as uow:
        applications.correct_form(
            uow, rt, actor=sp, application_id=app.id, photo_source="id_card_authorisation"
        )
    with rt.uow() as uow:
        applications.return_form(uow, rt, actor=sp, application_id=app.id)
    with rt.uow() as uow:
        _, card = applications.check_individual(uow, rt, actor=sp, application_id=app.id)
    assert card is not None
    return card.id


def _life(rt: Runtime, p: Staffed, n: int, card_id: int) -> None:
    """Production, pickup, activation, an inquiry, and for some an oral loss report."""
    bank = rt.policy.bank(BANK)
    assert bank is not None
    with rt.uow() as uow:
        card = cards.record_production(
            uow,
            rt,
            actor=p.bank,
            card_id=card_id,
            card_number=f"A{n:08d}",
            serial=f"SN{n:010d}",
            bank_card_number=luhn_complete(bank.bin_prefixes[0] + f"{n:012d}"),
            outlet_code=p.outlet.org_code,
        ).card
    with rt.uow() as uow:
        cards.pickup(uow, rt, actor=p.outlet, card_id=card_id, by="holder")
    with rt.uow() as uow:
        cards.activate(uow, rt, actor=p.outlet, card_id=card_id, channel="outlet")
    log_inquiries(
        rt,
        actor=p.service_point,
        action="inquiry.get_person",
        route="GET /persons/{person_id}",
        reads=[("record", "person", card.person_id)],
    )
    if n % LOSS_EVERY == 0:
        with rt.uow() as uow:
            loss.report_loss_oral(uow, rt, actor=p.outlet, card_id=card_id, channel="bank_phone")
        with rt.uow() as uow:
            loss.cancel_loss_report(uow, rt, actor=p.outlet, card_id=card_id)


def vacuum(engine: Engine) -> None:
    """VACUUM ANALYZE every table, as autovacuum does in the background."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _background(rt: Runtime, engine: Engine) -> None:
    """What runs beside the requests: the sweeper (sealing too), delivery, autovacuum."""
    sweep(rt)
    deliver(rt)
    vacuum(engine)


def add_partitions_from(engine: Engine, start: datetime) -> None:
    """The audit trail's month partitions from ``start`` on, where the schema has them.

    The migration makes them from the database's today; the bench's clock starts
    earlier, so its first months are made here as the migration would have made them.
    """
    with engine.begin() as conn:
        found = conn.scalar(
            text("SELECT to_regprocedure('audit_records_add_partitions(timestamptz, integer)')")
        )
        if found is not None:
            conn.execute(text("SELECT audit_records_add_partitions(:s, 4)"), {"s": start})


def drive(svc: Service, clock: FixedClock, n: int, every: int, log: Log) -> None:
    """``n`` cardholders through a card's ordinary life; after each ``every`` of them the
    background jobs run (sweeper, delivery, VACUUM), so that space freed by one group's
    updates is reused by the next, as autovacuum lets it be in production."""
    rt = svc.runtime
    parties = _parties(rt)
    card_ids = []
    for i in range(1, n + 1):
        card_ids.append(_order(rt, parties, i))
        if i % every == 0:
            _background(rt, svc.engine)
            log(f"ordered {i} cards")
    clock.advance(timedelta(days=60))  # past every card's ready day (30 working days)
    _background(rt, svc.engine)
    for i, card_id in enumerate(card_ids, start=1):
        _life(rt, parties, i, card_id)
        if i % every == 0:
            _background(rt, svc.engine)
            log(f"{i} cards active")
    _background(rt, svc.engine)
    clock.advance(retention() + timedelta(days=1))  # delivered events leave after it
    _background(rt, svc.engine)


SIZES = """
SELECT c.relname,
       pg_relation_size(c.oid) AS heap,
       pg_indexes_size(c.oid) AS indexes,
       coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast,
       pg_total_relation_size(c.oid) AS total,
       c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

PARTITIONS = """
SELECT sum(pg_relation_size(p.relid)),
       sum(pg_indexes_size(p.relid)),
       sum(coalesce(pg_total_relation_size(c.reltoastrelid), 0)),
       sum(pg_total_relation_size(p.relid))
FROM pg_partition_tree(CAST(:t AS regclass)) p JOIN pg_class c ON c.oid = p.relid
"""


def sizes(engine: Engine) -> list[tuple[str, int, int, int, int, int]]:
    """Each table's (name, rows, heap, indexes, toast, total bytes); a partitioned
    table's partitions are summed into it."""
    with engine.connect() as conn:
        rows = conn.execute(text(SIZES)).all()
        out = []
        for name, *own, kind in rows:
            measured = conn.execute(text(PARTITIONS), {"t": name}).one() if kind == "p" else own
            heap, indexes, toast, total = (int(v) for v in measured)
            count = conn.scalar(text(f'SELECT count(*) FROM "{name}"'))  # noqa: S608 (catalog)
            out.append((name, int(count or 0), heap, indexes, toast, total))
    return sorted(out, key=lambda r: -r[5])


def report(engine: Engine, n: int) -> None:
    """Print rows and bytes per cardholder by table, largest first."""
    rows = sizes(engine)
    print(f"bytes per cardholder ({n} cardholders), after VACUUM ANALYZE")
    print(f"{'table':24} {'rows':>7} {'heap':>9} {'indexes':>9} {'toast':>9} {'total':>9}")
    sums = [0, 0, 0, 0, 0]
    for name, *values in rows:
        if values[4] == 0:
            continue
        sums = [a + b for a, b in zip(sums, values, strict=True)]
        print(f"{name:24} {values[0] / n:7.2f} " + " ".join(f"{v / n:9.1f}" for v in values[1:]))
    print(f"{'all tables':24} {'':7} " + " ".join(f"{v / n:9.1f}" for v in sums[1:]))
    print("audit entries: per cardholder, and mean bytes of a stored row (with its item pointer)")
    with engine.connect() as conn:
        for kind, count, mean in conn.execute(text(ENTRIES)):
            print(f"  {kind:30} {count / n:9.2f} {float(mean):9.1f}")


ENTRIES = """
SELECT kind, count(*), avg(pg_column_size(a.*) + 4)
FROM audit_records a GROUP BY kind ORDER BY kind
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    p.add_argument("--cardholders", type=int, default=2000, help="persons driven through")
    p.add_argument(
        "--vacuum-every", type=int, default=200, help="cardholders between background runs"
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL database to connect to")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    keys = tempfile.TemporaryDirectory(prefix="sscard-storage-keys-")
    os.environ["SSCARD_KEY_DIR"] = keys.name  # throwaway keys, gone with the folder
    os.environ["SSCARD_CREATE_KEYS"] = "1"
    log = Log()
    admin_url = make_url(args.admin_url)
    name = f"sscard_storage_{secrets.token_hex(4)}"
    try:
        with scratch_databases(admin_url, [name], log):
            clock = FixedClock(START)
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            engine = make_engine(url)
            upgrade(engine)
            add_partitions_from(engine, START)
            engine.dispose()
            svc = prepare(url, clock=clock)
            try:
                drive(svc, clock, args.cardholders, args.vacuum_every, log)
                checked = verify(svc.runtime)
                if not (checked.intact and checked.complete):
                    raise RuntimeError(f"the audit chain does not verify: {checked.broken}")
                log(f"audit chain intact: {checked.checked} entries verified")
                vacuum(svc.engine)
                report(svc.engine, args.cardholders)
            finally:
                svc.engine.dispose()
    except Unreachable as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
