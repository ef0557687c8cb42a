"""``sscard import persons|units``: all-or-nothing CSV imports with a line-by-line report.

Runs on a fresh SQLite file and a fresh PostgreSQL database (see ``test_cli.py`` for the
shared helpers). CSV line numbers count the header as line 1.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from stdnum.cn import ric, uscc

from sscard.audit.tables import AuditRecord
from sscard.core.ids import make_citizen_id, mask_id_number
from sscard.register.service import has_id_number
from sscard.register.tables import Organization, Person, Unit
from tests.integration.test_cli import (
    count,
    invoke,
    operator_shell,
    says,
    scratch_database,
    squash,
    table_names,
)

PERSON_HEADER = (
    "id_number,name,status,phone,unit_code,medical_scheme,insured_since,old_medical_card_no"
)
UNIT_HEADER = "code,name,uscc,unit_kind,agreement_bank_code"


@pytest.fixture(autouse=True)
def _operator_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    with operator_shell(monkeypatch, tmp_path):
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend (PostgreSQL unreachable → the test fails)."""
    with scratch_database(request.param, tmp_path) as url:
        yield url


# ---------------------------------------------------------------- building files


def citizen(order: int, birth: date = date(1990, 3, 14)) -> str:
    return make_citizen_id("441900", birth, order)


def with_bad_check_character(number: str) -> str:
    return number[:-1] + ("1" if number[-1] != "1" else "2")


def born_on_30_february() -> str:
    body = "44190019900230123"
    return body + str(ric.calc_check_digit(body + "0"))


def usc_code(n: int) -> str:
    body = f"91441900MA{n:07d}"
    return body + str(uscc.calc_check_digit(body))


def person(
    number: str,
    *,
    name: str = "张三",
    status: str = "employed",
    phone: str = "13800138000",
    unit: str = "",
    scheme: str = "employee",
    since: str = "2020-01-01",
    old_card: str = "",
) -> str:
    return ",".join((number, name, status, phone, unit, scheme, since, old_card))


def unit(code: str, usc: str, kind: str = "ordinary", bank: str = "ICBC") -> str:
    return ",".join((code, f"{code} 有限公司", usc, kind, bank))


def write_csv(path: Path, header: str, rows: Sequence[str]) -> Path:
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def persons_in(url: str, numbers: Sequence[str]) -> int:
    return sum(count(url, Person, has_id_number(n)) for n in numbers)


# ---------------------------------------------------------------- persons

GOOD_A = citizen(101)
GOOD_HK = make_citizen_id("810000", date(1992, 8, 8), 202)  # ID-2: Hong Kong resident
REGISTERED = citizen(303)
BAD_CHECK = with_bad_check_character(citizen(404))
BAD_BIRTH = born_on_30_february()
BAD_REGION = make_citizen_id("999999", date(1990, 1, 1), 505)
UNKNOWN_UNIT, BAD_PHONE, BAD_STATUS = citizen(606), citizen(707), citizen(808)

# (CSV line, field, message) for every bad line of ``_bad_persons_file``.
BAD_PERSON_LINES = [
    (3, "id_number", f"ID number {mask_id_number(BAD_CHECK)} is invalid: bad check character"),
    (4, "id_number", f"ID number {mask_id_number(BAD_BIRTH)} is invalid: impossible birth date"),
    (5, "id_number", f"ID number {mask_id_number(BAD_REGION)} is invalid: unknown region code"),
    (6, "id_number", "this ID number appears earlier in the file"),
    (7, "unit_code", "no unit with code 'NOPE'"),
    (8, "phone", "phone must be an 11-digit mobile number"),
    (9, "status", "'working' is not a valid status"),
    (10, "id_number", "a person with this ID number is registered"),
]


def _bad_persons_file(tmp_path: Path, db_url: str) -> Path:
    """Demo units, one registered person, and a file of 10 lines of which 8 are bad."""
    assert invoke("demo", "--database", db_url).exit_code == 0
    first = write_csv(tmp_path / "first.csv", PERSON_HEADER, [person(REGISTERED)])
    assert invoke("import", "persons", str(first), "--database", db_url).exit_code == 0
    return write_csv(
        tmp_path / "persons.csv",
        PERSON_HEADER,
        [
            person(GOOD_A, unit="U-ACME"),  # line 2
            person(BAD_CHECK),
            person(BAD_BIRTH),
            person(BAD_REGION),
            person(GOOD_A, name="李四"),  # line 6: GOOD_A again
            person(UNKNOWN_UNIT, unit="NOPE"),
            person(BAD_PHONE, phone="12345"),
            person(BAD_STATUS, status="working"),
            person(REGISTERED),  # line 10
            person(GOOD_HK, status="retired", phone=""),  # line 11
        ],
    )


def test_id_2_import_registers_citizens_and_residence_permit_holders(
    db_url: str, tmp_path: Path
) -> None:
    numbers = [GOOD_A, citizen(102, date(2001, 12, 31)), GOOD_HK]
    path = write_csv(
        tmp_path / "persons.csv",
        PERSON_HEADER,
        [
            person(numbers[0], old_card="YB0001"),
            person(numbers[1], status="unemployed", phone="0769-22112233", since=""),
            person(numbers[2], scheme="comprehensive", phone=""),
        ],
    )
    result = invoke("import", "persons", str(path), "--database", db_url)
    assert result.exit_code == 0, result.stderr
    assert "imported 3 of 3 persons" in result.stdout

    assert count(db_url, Person) == 3
    assert persons_in(db_url, numbers) == 3
    hk = (has_id_number(GOOD_HK), Person.id_kind == "hk_permit")
    assert count(db_url, Person, *hk, Person.birth_date == date(1992, 8, 8)) == 1
    assert count(db_url, Person, Person.old_medical_card_state == "normal") == 1
    # Every registration is audited in the same transaction.
    assert count(db_url, AuditRecord, AuditRecord.action == "person.registered") == 3


def test_id_1_import_reports_every_bad_line_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    path = _bad_persons_file(tmp_path, db_url)
    before = count(db_url, Person)
    audits = count(db_url, AuditRecord)

    result = invoke("import", "persons", str(path), "--database", db_url)
    assert result.exit_code == 1
    assert "imported" not in result.stdout
    for line, field, message in BAD_PERSON_LINES:
        assert says(result.stderr, f"{path}:{line}: {field}: {message}"), (line, result.stderr)
    for good_line in (2, 11):
        assert f"{path.name}:{good_line}:" not in squash(result.stderr)
    assert says(result.stderr, "8 of 10 lines are invalid; nothing was imported")

    assert count(db_url, Person) == before
    assert persons_in(db_url, [GOOD_A, GOOD_HK]) == 0
    assert count(db_url, AuditRecord) == audits


def test_id_1_import_reports_each_bad_line_on_one_line(db_url: str, tmp_path: Path) -> None:
    # Editors and scripts read "FILE:LINE: field: message" one line at a time.
    path = write_csv(
        tmp_path / "persons.csv",
        PERSON_HEADER,
        [person(BAD_CHECK), person(GOOD_A), person(BAD_PHONE, phone="12345")],
    )
    result = invoke("import", "persons", str(path), "--database", db_url)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert (
        f"{path}:2: id_number: ID number {mask_id_number(BAD_CHECK)} is invalid: "
        "bad check character (GB 11643)"
    ) in lines
    assert (
        f"{path}:4: phone: phone must be an 11-digit mobile number (13x-19x) or an "
        "area-code landline"
    ) in lines


def test_id_1_import_errors_never_print_a_full_id_number(db_url: str, tmp_path: Path) -> None:
    path = _bad_persons_file(tmp_path, db_url)
    report = tmp_path / "report.csv"
    result = invoke("import", "persons", str(path), "-d", db_url, "--errors", str(report))
    assert result.exit_code == 1
    printed = squash(result.stdout + result.stderr)
    written = report.read_text(encoding="utf-8")
    for number in (BAD_CHECK, BAD_BIRTH, BAD_REGION, GOOD_A, REGISTERED):
        assert number not in printed
        assert number not in written
    # The masked form is enough to find the person.
    assert mask_id_number(BAD_CHECK) in printed
    assert mask_id_number(BAD_CHECK) in written


def test_s1_import_errors_mask_numbers_that_landed_in_another_column(
    db_url: str, tmp_path: Path
) -> None:
    # A shifted column: the ID number sits where the unit code belongs, and the error
    # that quotes the unknown unit code must not quote it in full.
    number = citizen(41)
    path = write_csv(
        tmp_path / "shifted.csv",
        PERSON_HEADER,
        [f"{citizen(42)},王五,employed,13912345678,{number},employee,2024-01-01,"],
    )
    report = tmp_path / "report.csv"
    result = invoke("import", "persons", str(path), "-d", db_url, "--errors", str(report))
    assert result.exit_code == 1
    printed = squash(result.stdout + result.stderr)
    assert "unit_code" in printed
    assert number not in printed
    assert number not in report.read_text(encoding="utf-8")
    assert mask_id_number(number) in printed


def test_import_persons_skip_invalid_imports_only_the_valid_lines(
    db_url: str, tmp_path: Path
) -> None:
    path = _bad_persons_file(tmp_path, db_url)
    before = count(db_url, Person)

    result = invoke("import", "persons", str(path), "--skip-invalid", "--database", db_url)
    assert result.exit_code == 0, result.stderr
    assert "imported 2 of 10 persons, skipped 8 invalid" in result.stdout
    assert says(result.stderr, f"{path}:7: unit_code: no unit with code 'NOPE'")

    assert count(db_url, Person) == before + 2
    assert persons_in(db_url, [GOOD_A, GOOD_HK]) == 2
    assert persons_in(db_url, [UNKNOWN_UNIT, BAD_PHONE, BAD_STATUS]) == 0
    acme = select(Organization.id).where(Organization.code == "U-ACME").scalar_subquery()
    assert count(db_url, Person, has_id_number(GOOD_A), Person.unit_org_id == acme) == 1


def test_import_persons_writes_the_error_report(db_url: str, tmp_path: Path) -> None:
    path = _bad_persons_file(tmp_path, db_url)
    report = tmp_path / "report.csv"
    result = invoke("import", "persons", str(path), "--database", db_url, "--errors", str(report))
    assert result.exit_code == 1
    assert says(result.stderr, f"error report written to {report}")

    with report.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "field", "message"]
    reported = sorted((int(n), field, message) for n, field, message in rows[1:])
    assert [(n, f) for n, f, _ in reported] == [(n, f) for n, f, _ in BAD_PERSON_LINES]
    for (_, _, written), (_, _, message) in zip(reported, BAD_PERSON_LINES, strict=True):
        assert written.startswith(message)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("name,status,phone", "missing: id_number"),
        (PERSON_HEADER + ",email", "unknown: email"),
    ],
)
def test_import_persons_refuses_a_wrong_header(
    db_url: str, tmp_path: Path, header: str, reason: str
) -> None:
    path = write_csv(tmp_path / "persons.csv", header, [person(GOOD_A) + ",x@example.com"])
    result = invoke("import", "persons", str(path), "--database", db_url)
    assert result.exit_code == 2
    assert says(result.stderr, "the header must name columns from: id_number, name")
    assert says(result.stderr, reason)
    assert count(db_url, Person) == 0


def test_import_refuses_a_missing_file(db_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    for kind in ("persons", "units"):
        result = invoke("import", kind, str(missing), "--database", db_url)
        assert result.exit_code == 2
        assert says(result.stderr, f"no such file: {missing}")
    assert table_names(db_url) == []


def test_import_reports_values_from_the_file_verbatim(db_url: str, tmp_path: Path) -> None:
    # Whatever the file holds is echoed as text, never read as console markup.
    path = write_csv(tmp_path / "persons.csv", PERSON_HEADER, [person(GOOD_A, unit="[/U-X]")])
    result = invoke("import", "persons", str(path), "--database", db_url)
    assert result.exit_code == 1
    assert says(result.stderr, f"{path}:2: unit_code: no unit with code '[/U-X]'")
    assert count(db_url, Person) == 0


# ---------------------------------------------------------------- units


def test_b_2_import_units_registers_agreements_that_follow_the_forcing_rule(
    db_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "units.csv",
        UNIT_HEADER,
        [
            unit("U-ORD", usc_code(1), "ordinary", "ICBC"),
            unit("U-MED", usc_code(2), "comprehensive_medical", "CGB"),
            unit("U-VIL", usc_code(3), "village_community", "DGB"),
            unit("U-NEW", usc_code(4), "", ""),  # no agreement signed yet
        ],
    )
    result = invoke("import", "units", str(path), "--database", db_url)
    assert result.exit_code == 0, result.stderr
    assert "imported 4 of 4 units" in result.stdout

    assert count(db_url, Unit) == 4
    med = (Unit.uscc == usc_code(2), Unit.unit_kind == "comprehensive_medical")
    assert count(db_url, Unit, *med, Unit.agreement_bank_code == "CGB") == 1
    new = (Unit.uscc == usc_code(4), Unit.unit_kind == "ordinary")
    assert count(db_url, Unit, *new, Unit.agreement_bank_code.is_(None)) == 1
    assert count(db_url, Organization, Organization.kind == "unit") == 4
    assert count(db_url, AuditRecord, AuditRecord.action == "unit.registered") == 4


def test_b_2_unit_import_refuses_forced_bank(db_url: str, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "units.csv",
        UNIT_HEADER,
        [
            unit("U-ORD", usc_code(1), "ordinary", "ICBC"),
            unit("U-MED", usc_code(2), "comprehensive_medical", "ICBC"),
            unit("U-VIL", usc_code(3), "village_community", "CGB"),
        ],
    )
    result = invoke("import", "units", str(path), "--database", db_url)
    assert result.exit_code == 1
    assert says(
        result.stderr,
        "units of kind 'comprehensive_medical' keep their original issuing bank: "
        "choose 'CGB', not 'ICBC' (B-2/B-3)",
    )
    assert f"{path}:3:" in squash(result.stderr)
    assert says(result.stderr, "choose 'DGB', not 'CGB'")
    assert f"{path}:4:" in squash(result.stderr)
    assert f"{path}:2:" not in squash(result.stderr)
    assert count(db_url, Unit) == 0
    assert count(db_url, Organization, Organization.kind == "unit") == 0


def test_import_units_names_the_csv_column_of_a_refused_bank(db_url: str, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "units.csv",
        UNIT_HEADER,
        [unit("U-MED", usc_code(2), "comprehensive_medical", "ICBC")],
    )
    report = tmp_path / "report.csv"
    result = invoke("import", "units", str(path), "--database", db_url, "--errors", str(report))
    assert result.exit_code == 1
    with report.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    # The report's field is the file's column, so the operator can find the cell.
    assert [r[:2] for r in rows[1:]] == [["2", "agreement_bank_code"]]


def test_import_units_reports_every_bad_line_and_writes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    taken = write_csv(tmp_path / "taken.csv", UNIT_HEADER, [unit("U-TAKEN", usc_code(9))])
    assert invoke("import", "units", str(taken), "--database", db_url).exit_code == 0
    good = usc_code(1)
    bad_check = good[:-1] + ("A" if good[-1] != "A" else "B")
    path = write_csv(
        tmp_path / "units.csv",
        UNIT_HEADER,
        [
            unit("U-ONE", good),  # line 2
            unit("U-BAD", bad_check),
            unit("U-ONE", usc_code(3)),  # line 4: code again
            unit("U-TAKEN", usc_code(5)),
            unit("U-HSBC", usc_code(6), bank="HSBC"),
            unit("U-KIND", usc_code(7), kind="charity"),
        ],
    )
    expected = [
        (3, "uscc", f"Unified Social Credit Code {bad_check} has a bad check character"),
        (4, "code", "code or USCC appears earlier in the file"),
        (5, "code", "code 'U-TAKEN' is taken"),
        (6, "agreement_bank_code", "'HSBC' is not an issuing bank of Dongguan"),  # B-1
        (7, "unit_kind", "unit_kind must be ordinary, comprehensive_medical, village_community"),
    ]
    result = invoke("import", "units", str(path), "--database", db_url)
    assert result.exit_code == 1
    for line, field, message in expected:
        assert says(result.stderr, f"{path}:{line}: {field}: {message}"), (line, result.stderr)
    assert says(result.stderr, "5 of 6 lines are invalid; nothing was imported")
    assert count(db_url, Unit) == 1

    skipped = invoke("import", "units", str(path), "--skip-invalid", "--database", db_url)
    assert skipped.exit_code == 0, skipped.stderr
    assert "imported 1 of 6 units, skipped 5 invalid" in skipped.stdout
    assert count(db_url, Unit) == 2
    assert count(db_url, Unit, Unit.uscc == good) == 1
