"""The operator's command line: ``sscard --help``."""

from __future__ import annotations

import csv
import logging
import os
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sscard.access.disclosure import scrub
from sscard.access.model import SYSTEM, Actor, Role
from sscard.bootstrap import Service, prepare
from sscard.core.clock import FixedClock, OffsetClock, SystemClock
from sscard.core.errors import DomainError
from sscard.core.keys import KeyUnavailable
from sscard.core.policy import PolicyError, load_policy, preset_names
from sscard.register.model import OrgKind
from sscard.register.service import create_staff, org_by_code

app = typer.Typer(
    help="sscard: social security card platform (operators' commands)",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database set-up", no_args_is_help=True)
policy_app = typer.Typer(help="Region policy files", no_args_is_help=True)
import_app = typer.Typer(
    help="Import persons, units, contributions and old-card balances from CSV",
    no_args_is_help=True,
)
calendar_app = typer.Typer(help="Working-day calendar", no_args_is_help=True)
staff_app = typer.Typer(help="Staff members and their tokens", no_args_is_help=True)
ledger_app = typer.Typer(help="The medical accounts' ledger", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail", no_args_is_help=True)
events_app = typer.Typer(help="Partner events and their webhooks", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (policy_app, "policy"),
    (import_app, "import"),
    (calendar_app, "calendar"),
    (staff_app, "staff"),
    (ledger_app, "ledger"),
    (audit_app, "audit"),
    (events_app, "events"),
):
    app.add_typer(sub, name=name)

out = Console()
err = Console(stderr=True)
CLI_ACTOR = Actor(
    staff_id=None,
    org_id=None,
    org_kind=OrgKind.CENTER,
    org_code="CLI",
    name="operator (cli)",
    # Whoever runs the command line on the server administers the installation.
    role=Role.ADMINISTRATOR.value,
    source="cli",
)
# The operator at the machine administers staff of every organization.
CLI_ADMIN = replace(CLI_ACTOR, role="administrator")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--database", "-d", envvar="SSCARD_DATABASE_URL", help="Database URL (default: SQLite file)"
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    # Messages may quote the operator's files: print them verbatim, on one line.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _service(url: str | None, *, policy: str | None = None, at: datetime | None = None) -> Service:
    try:
        svc = prepare(url, policy=policy, clock=FixedClock(at) if at else None)
    except (PolicyError, KeyUnavailable) as exc:
        raise _fail(str(exc)) from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(svc.engine.dispose)
    return svc


def _at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"--at '{value}' is not an ISO date-time such as 2027-01-05T09:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        raise _fail("--at needs a timezone offset, e.g. 2027-01-05T09:00:00+08:00")
    return moment


@db_app.command("upgrade")
def db_upgrade(database: DbOption = None) -> None:
    """Create or migrate the schema to the newest version."""
    svc = _service(database)
    out.print(f"database ready: {svc.engine.url.render_as_string(hide_password=True)}")


@db_app.command("check")
def db_check(database: DbOption = None) -> None:
    """Fail if the models and the migrations disagree."""
    from sscard.db.migrate import check

    svc = _service(database)
    check(svc.engine)
    out.print("models and migrations agree")


@policy_app.command("check")
def policy_check(file: str) -> None:
    """Check a policy file (a preset name or a path) and print what it says."""
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{policy.region.name} ({policy.region.code})")
    table.add_column("setting")
    table.add_column("value")
    table.add_row("banks", ", ".join(b.code for b in policy.banks))
    table.add_row(
        "bank forcing", ", ".join(f"{k}→{v}" for k, v in policy.bank_forcing.items()) or "none"
    )
    table.add_row("activation channels", ", ".join(policy.activation.channels))
    table.add_row("oral loss channels", ", ".join(policy.loss.oral_channels))
    table.add_row("agents may", ", ".join(policy.agents.allowed))
    table.add_row(
        "replacement / change fee",
        f"{policy.fees.replacement_fen / 100:.2f} / {policy.fees.change_fen / 100:.2f} yuan",
    )
    for key, value in policy.deadlines.model_dump().items():
        table.add_row(key, str(value))
    logins = policy.logins
    table.add_row(
        "logins",
        f"{logins.max_failed_attempts} failures lock {logins.lockout_minutes} min; sessions "
        f"{logins.session_idle_minutes} min idle, {logins.session_absolute_hours} h in all",
    )
    out.print(table)


@policy_app.command("load")
def policy_load(file: str, database: DbOption = None) -> None:
    """Make a policy file this database's policy (refused with line and reason if bad)."""
    svc = _service(database, policy=file)
    out.print(
        f"policy of {svc.runtime.policy.region.name_en} loaded "
        f"({len(svc.runtime.policy.banks)} banks)"
    )


@policy_app.command("presets")
def policy_presets() -> None:
    """List the shipped presets."""
    for name in preset_names():
        out.print(name)


@app.command("demo")
def demo(database: DbOption = None) -> None:
    """Load the demo region (organizations, units, persons, staff tokens)."""
    from sscard.demo import load_demo

    svc = _service(database)
    logins = load_demo(svc.runtime)
    _print_logins(logins.tokens)


def _print_logins(tokens: dict[str, str]) -> None:
    table = Table(title="demo staff tokens (Authorization: Bearer <token>)")
    table.add_column("organization")
    table.add_column("token")
    for code, token in tokens.items():
        table.add_row(code, token)
    out.print(table)
    from sscard.demo import ADMIN_LOGIN, ADMIN_PASSWORD, CENTER

    out.print(
        f"demo administrator: org_code {CENTER}, login {ADMIN_LOGIN}, password {ADMIN_PASSWORD} "
        "(POST /auth/sessions)"
    )


@app.command("sweep")
def sweep_cmd(
    database: DbOption = None,
    at: Annotated[
        str | None, typer.Option(help="Run as if at this time (ISO, with offset)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 5000,
) -> None:
    """Apply every due deadline once (safe to run while another sweep runs)."""
    from sscard.jobs.sweeper import sweep

    svc = _service(database, at=_at(at))
    report = sweep(svc.runtime, batch_size=batch_size)
    for job, count in report.counts.items():
        out.print(f"{job:24} {count}")
    out.print(f"total                    {report.total}")


@events_app.command("deliver")
def events_deliver(
    database: DbOption = None,
    at: Annotated[
        str | None, typer.Option(help="Run as if at this time (ISO, with offset)")
    ] = None,
) -> None:
    """Fan out new events and send every due webhook once (safe beside the server's)."""
    from sscard.events.delivery import deliver

    svc = _service(database, at=_at(at))
    report = deliver(svc.runtime)
    out.print(f"{'fanned_out':24} {report.fanned_out}")
    for result, count in report.counts.items():
        out.print(f"{result:24} {count}")


def _run_import(
    kind: str,
    file: Path,
    database: str | None,
    skip_invalid: bool,
    errors_to: Path | None,
    **options: str,
) -> None:
    from sscard.accounts.imports import import_contributions, import_old_card_balances
    from sscard.register.importer import import_persons, import_units

    if not file.exists():
        raise _fail(f"no such file: {file}")
    svc = _service(database)
    with file.open(encoding="utf-8-sig") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)
    importers: dict[str, Any] = {
        "persons": import_persons,
        "units": import_units,
        "contributions": import_contributions,
        "old card balances": import_old_card_balances,
    }
    fn = importers[kind]
    with Progress(
        TextColumn(f"checking {kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(kind, total=total)
        try:
            with svc.runtime.uow() as uow:
                report = fn(
                    uow,
                    svc.runtime,
                    actor=CLI_ACTOR,
                    path=file,
                    skip_invalid=skip_invalid,
                    progress=lambda n: bar.advance(task, n),
                    **options,
                )
        except DomainError as exc:
            raise _fail(exc.detail) from None
    # S-1: a message quotes the input it refuses; a shifted column can put an ID or
    # bank card number anywhere, so every message is scrubbed before it is shown.
    for e in report.errors[:50]:
        err.print(
            f"{file}:{e.line}: {e.field}: {scrub(e.message)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if len(report.errors) > 50:
        err.print(f"... and {len(report.errors) - 50} more lines with errors")
    if errors_to and report.errors:
        with errors_to.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "field", "message"])
            writer.writerows((e.line, e.field, scrub(e.message)) for e in report.errors)
        err.print(f"error report written to {errors_to}")
    if report.errors and not skip_invalid:
        raise _fail(
            f"{len(report.errors)} of {report.read} lines are invalid; nothing was "
            "imported (fix them, or pass --skip-invalid to import the valid lines)",
            1,
        )
    out.print(
        f"imported {report.written} of {report.read} {kind}"
        + (f", skipped {len(report.errors)} invalid" if report.errors else "")
    )


SkipOption = Annotated[bool, typer.Option(help="Import the valid lines and skip the rest")]
ErrorsOption = Annotated[
    Path | None, typer.Option("--errors", help="Write the error report to this CSV file")
]


@import_app.command("persons")
def import_persons_cmd(
    file: Path,
    database: DbOption = None,
    skip_invalid: SkipOption = False,
    errors: ErrorsOption = None,
) -> None:
    """Import insured persons (id_number,name,status,phone,unit_code,medical_scheme,
    insured_since,old_medical_card_no)."""
    _run_import("persons", file, database, skip_invalid, errors)


@import_app.command("units")
def import_units_cmd(
    file: Path,
    database: DbOption = None,
    skip_invalid: SkipOption = False,
    errors: ErrorsOption = None,
) -> None:
    """Import insured units (code,name,uscc,unit_kind,agreement_bank_code)."""
    _run_import("units", file, database, skip_invalid, errors)


@import_app.command("contributions")
def import_contributions_cmd(
    unit_code: str,
    file: Path,
    database: DbOption = None,
    skip_invalid: SkipOption = False,
    errors: ErrorsOption = None,
) -> None:
    """Credit a unit's monthly contributions (id_number,month,amount_fen) to medical accounts."""
    _run_import("contributions", file, database, skip_invalid, errors, unit_code=unit_code)


@import_app.command("old-card-balances")
def import_old_cards_cmd(
    file: Path,
    database: DbOption = None,
    skip_invalid: SkipOption = False,
    errors: ErrorsOption = None,
) -> None:
    """Take over old medical cards' balances (id_number,balance_fen)."""
    _run_import("old card balances", file, database, skip_invalid, errors)


@ledger_app.command("check")
def ledger_check(database: DbOption = None) -> None:
    """Prove every medical account's balance equals the sum of its entries."""
    from sqlalchemy.orm import Session

    from sscard.accounts.ledger import check

    svc = _service(database)
    engine = svc.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    with Session(engine) as session:
        problems = check(session)
    for p in problems[:100]:
        err.print(f"{p.what} {p.id}: stored {p.stored}, entries sum to {p.computed}")
    if problems:
        raise _fail(f"{len(problems)} ledger problems found", 1)
    out.print("ledger consistent: every balance equals the sum of its entries")


@audit_app.command("seal")
def audit_seal(
    database: DbOption = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 5000,
) -> None:
    """Seal every audit entry waiting for it (the sweeper also does, every cycle)."""
    from sscard.audit.sealer import seal

    svc = _service(database)
    try:
        sealed = seal(svc.runtime, batch_size=batch_size)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    out.print(f"sealed {sealed} audit entries")


@audit_app.command("verify")
def audit_verify(
    database: DbOption = None,
    from_seq: Annotated[int, typer.Option("--from-seq", min=1, help="Start at this seq")] = 1,
) -> None:
    """Recompute every hash of the audit chain; exit 1 naming the first broken entry."""
    from sscard.audit.verification import verify

    svc = _service(database)
    try:
        result = verify(svc.runtime, from_seq=from_seq)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    counts = (
        f"{result.sealed} entries sealed, {result.checked} checked intact from seq "
        f"{result.from_seq}, {result.unsealed} waiting for sealing"
    )
    broken = result.broken
    if broken is None:
        out.print(f"audit chain intact: {counts}")
        return
    out.print(counts)
    entry = (
        f"entry {broken.id} ({broken.occurred_at.isoformat() if broken.occurred_at else '?'}, "
        f"{broken.action})"
        if broken.id is not None
        else "a missing entry"
    )
    raise _fail(
        f"audit chain broken at seq {broken.chain_seq}: {entry}: "
        f"{broken.problem.value.replace('_', ' ')}: {broken.detail}",
        1,
    )


# ---------------------------------------------------------------- keys (personal data at rest)

keys_app = typer.Typer(
    help="Keys of the personal data at rest: status and rotation", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
BatchOption = Annotated[
    int, typer.Option("--batch", min=1, max=100_000, help="Rows per transaction")
]


@keys_app.command("status")
def keys_status(database: DbOption = None) -> None:
    """How many sealed values and blind indexes are under each key version."""
    from sscard.db.rotation import status

    svc = _service(database)
    with svc.runtime.uow() as uow:
        rows = status(uow.session)
    # One line per column, never cut: operators grep this (and so do the tests).
    for r in rows:
        versions = "  ".join(f"v{v}: {n}" for v, n in r.by_version.items())
        if r.other:
            versions += f"  not configured: {r.other}"
        out.print(
            f"{r.name:36} {r.keyring:10} current v{r.current}  {versions}  behind: {r.behind}",
            soft_wrap=True,
            highlight=False,
        )


@keys_app.command("rotate-data")
def keys_rotate_data(database: DbOption = None, batch: BatchOption = 5000) -> None:
    """Seal every value again under the newest data key (resumable, safe to re-run)."""
    from sscard.db.rotation import rotate_data

    svc = _service(database)
    try:
        done = rotate_data(svc.runtime, actor=CLI_ACTOR, batch=batch)
    except DomainError as exc:
        raise _fail(str(exc)) from None
    for name, n in done.items():
        out.print(f"{name:36} {n} re-sealed")


@keys_app.command("rotate-index")
def keys_rotate_index(database: DbOption = None, batch: BatchOption = 5000) -> None:
    """Recompute every blind index under the newest index key (resumable, safe to re-run)."""
    from sscard.db.rotation import rotate_index

    svc = _service(database)
    try:
        done = rotate_index(svc.runtime, actor=CLI_ACTOR, batch=batch)
    except DomainError as exc:
        raise _fail(str(exc)) from None
    for name, n in done.items():
        out.print(f"{name:36} {n} recomputed")


@calendar_app.command("load")
def calendar_load(file: Path, database: DbOption = None) -> None:
    """Load a year's official schedule (TOML: year, holidays, workdays)."""
    from sscard.region.service import load_schedule

    if not file.exists():
        raise _fail(f"no such file: {file}")
    svc = _service(database)
    try:
        with svc.runtime.uow() as uow:
            sched = load_schedule(
                uow,
                actor=SYSTEM,
                text=file.read_text(encoding="utf-8"),
                source=str(file),
                now=svc.runtime.now(),
            )
    except DomainError as exc:
        raise _fail(exc.detail) from None
    out.print(
        f"{sched.year}: {len(sched.holidays)} holidays, {len(sched.workdays)} adjusted "
        "working days loaded"
    )


@calendar_app.command("add")
def calendar_add(start: str, days: int, database: DbOption = None) -> None:
    """The date DAYS working days after START (YYYY-MM-DD)."""
    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise _fail(f"'{start}' is not a date YYYY-MM-DD") from None
    svc = _service(database)
    try:
        with svc.runtime.uow() as uow:
            result = svc.runtime.calendar(uow.session).add_working_days(first, days)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    out.print(
        f"{result.day}"
        + (" (provisional: beyond the known official schedules)" if result.provisional else "")
    )


@staff_app.command("add")
def staff_add(
    org_code: str,
    name: str,
    database: DbOption = None,
    role: Annotated[str, typer.Option()] = "operator",
    login: Annotated[
        str | None, typer.Option(help="Also give a login name for password login")
    ] = None,
    ask_password: Annotated[
        bool, typer.Option(help="Prompt for the password (else a one-time one is printed)")
    ] = False,
) -> None:
    """Add a staff member to an organization and print their token (shown once)."""
    from sscard.access.staffadmin import create_member, initial_password

    if role not in ("operator", "supervisor", "administrator"):
        raise _fail("role must be operator, supervisor or administrator")
    password = None
    if login is not None:
        password = (
            typer.prompt("password", hide_input=True, confirmation_prompt=True)
            if ask_password
            else initial_password()
        )
    svc = _service(database)
    try:
        with svc.runtime.uow() as uow:
            if login is None:
                org = org_by_code(uow.session, org_code)
                _, token = create_staff(
                    uow.session,
                    actor=CLI_ACTOR,
                    org=org,
                    name=name,
                    role=role,
                    now=svc.runtime.now(),
                )
                uow.commit()
                staff_id = None
            else:
                assert password is not None
                staff, issued = create_member(
                    uow,
                    svc.runtime,
                    actor=CLI_ADMIN,
                    org_code=org_code,
                    name=name,
                    role=role,
                    login=login,
                    password=password,
                    with_token=True,
                )
                token, staff_id = issued or "", staff.id
    except DomainError as exc:
        raise _fail(exc.detail) from None
    if staff_id is not None:
        out.print(f"staff member {staff_id}: login {login.lower() if login else ''} at {org_code}")
        if not ask_password:
            out.print(f"initial password (shown once): {password}")
    out.print(f"token for {name} at {org_code} (shown once): {token}")


StaffId = Annotated[int, typer.Argument(help="The staff member's id")]


def _staff_change(database: str | None, what: str, staff_id: int) -> None:
    from sscard.access import staffadmin

    fn = {
        "deactivate": staffadmin.deactivate,
        "revoke-token": staffadmin.revoke_token,
        "unlock": staffadmin.unlock,
    }[what]
    svc = _service(database)
    try:
        with svc.runtime.uow() as uow:
            fn(uow, svc.runtime, actor=CLI_ADMIN, staff_id=staff_id)
    except DomainError as exc:
        raise _fail(exc.detail) from None


@staff_app.command("deactivate")
def staff_deactivate(staff_id: StaffId, database: DbOption = None) -> None:
    """Deactivate a staff member: their sessions, token and credentials end at once."""
    _staff_change(database, "deactivate", staff_id)
    out.print(f"staff member {staff_id} deactivated")


@staff_app.command("revoke-token")
def staff_revoke_token(staff_id: StaffId, database: DbOption = None) -> None:
    """Revoke a staff member's personal access token."""
    _staff_change(database, "revoke-token", staff_id)
    out.print(f"token of staff member {staff_id} revoked")


@staff_app.command("unlock")
def staff_unlock(staff_id: StaffId, database: DbOption = None) -> None:
    """Lift a login lockout after repeated wrong passwords or codes."""
    _staff_change(database, "unlock", staff_id)
    out.print(f"login of staff member {staff_id} unlocked")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    database: DbOption = None,
    policy: Annotated[str | None, typer.Option(envvar="SSCARD_POLICY")] = None,
    demo: Annotated[
        bool, typer.Option(help="Load the demo region and allow moving the clock")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            envvar="SSCARD_WORKERS",
            min=1,
            max=64,
            help="Worker processes (one per core is a good start; the demo uses one)",
        ),
    ] = 1,
    sweep_interval: Annotated[
        float, typer.Option(envvar="SSCARD_SWEEP_INTERVAL", help="Seconds between deadline sweeps")
    ] = 60.0,
    delivery_interval: Annotated[
        float,
        typer.Option(envvar="SSCARD_DELIVERY_INTERVAL", help="Seconds between webhook runs"),
    ] = 5.0,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            envvar="SSCARD_ACCESS_LOG",
            help="A log line per request (default: the demo only; a proxy's is cheaper)",
        ),
    ] = None,
) -> None:
    """Start the service."""
    from sscard.api.serving import Options
    from sscard.api.serving import serve as run
    from sscard.demo import load_demo

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if demo and workers > 1:
        raise _fail("the demo moves its clock in one process: serve it with --workers 1")
    clock = OffsetClock(SystemClock()) if demo else SystemClock()
    if demo:
        os.environ.setdefault("SSCARD_CREATE_KEYS", "1")  # the demo makes its own keys
    try:
        svc = prepare(database, policy=policy, clock=clock)
    except (PolicyError, KeyUnavailable) as exc:
        raise _fail(str(exc)) from None
    if demo:
        _print_logins(load_demo(svc.runtime).tokens)
    url = f"http://{host}:{port}"
    out.print(
        f"sscard for {svc.runtime.policy.region.name_en} on "
        f"{svc.engine.url.render_as_string(hide_password=True)}"
        + (f", {workers} worker processes" if workers > 1 else "")
    )
    out.print(f"open {url}/docs (API), {url}/openapi.json; press Ctrl+C to stop")
    run(
        svc,
        Options(
            host=host,
            port=port,
            workers=workers,
            sweep_interval=sweep_interval,
            delivery_interval=delivery_interval,
            demo=demo,
            access_log=demo if access_log is None else access_log,
        ),
    )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
