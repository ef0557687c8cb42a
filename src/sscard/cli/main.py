"""The operator's command line: ``sscard --help``."""

from __future__ import annotations

import csv
import logging
import os
import sys
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
from sscard.access.model import SYSTEM, Actor
from sscard.bootstrap import Service, prepare
from sscard.core.clock import FixedClock, OffsetClock, SystemClock
from sscard.core.errors import DomainError
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
for sub, name in (
    (db_app, "db"),
    (policy_app, "policy"),
    (import_app, "import"),
    (calendar_app, "calendar"),
    (staff_app, "staff"),
    (ledger_app, "ledger"),
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
    source="cli",
)

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
    except PolicyError as exc:
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


@app.command("sweep")
def sweep_cmd(
    database: DbOption = None,
    at: Annotated[
        str | None, typer.Option(help="Run as if at this time (ISO, with offset)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
) -> None:
    """Apply every due deadline once (safe to run while another sweep runs)."""
    from sscard.jobs.sweeper import sweep

    svc = _service(database, at=_at(at))
    report = sweep(svc.runtime, batch_size=batch_size)
    for job, count in report.counts.items():
        out.print(f"{job:24} {count}")
    out.print(f"total                    {report.total}")


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
) -> None:
    """Add a staff member to an organization and print their token (shown once)."""
    if role not in ("operator", "supervisor", "administrator"):
        raise _fail("role must be operator, supervisor or administrator")
    svc = _service(database)
    try:
        with svc.runtime.uow() as uow:
            org = org_by_code(uow.session, org_code)
            _, token = create_staff(
                uow.session, actor=CLI_ACTOR, org=org, name=name, role=role, now=svc.runtime.now()
            )
            uow.commit()
    except DomainError as exc:
        raise _fail(exc.detail) from None
    out.print(f"token for {name} at {org_code} (shown once): {token}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    database: DbOption = None,
    policy: Annotated[str | None, typer.Option(envvar="SSCARD_POLICY")] = None,
    demo: Annotated[
        bool, typer.Option(help="Load the demo region and allow moving the clock")
    ] = False,
    sweep_interval: Annotated[
        float, typer.Option(envvar="SSCARD_SWEEP_INTERVAL", help="Seconds between deadline sweeps")
    ] = 60.0,
) -> None:
    """Start the service."""
    import uvicorn

    from sscard.api.app import create_app
    from sscard.demo import load_demo

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    clock = OffsetClock(SystemClock()) if demo else SystemClock()
    if demo:
        os.environ.setdefault("SSCARD_CREATE_KEYS", "1")  # the demo makes its own keys
    try:
        svc = prepare(database, policy=policy, clock=clock)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    if demo:
        _print_logins(load_demo(svc.runtime).tokens)
    url = f"http://{host}:{port}"
    out.print(
        f"sscard for {svc.runtime.policy.region.name_en} on "
        f"{svc.engine.url.render_as_string(hide_password=True)}"
    )
    out.print(f"open {url}/docs (API), {url}/openapi.json; press Ctrl+C to stop")
    application = create_app(svc.runtime, demo=demo, sweep_interval=sweep_interval)
    uvicorn.run(application, host=host, port=port, log_level="info")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
