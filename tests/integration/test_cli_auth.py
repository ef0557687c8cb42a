"""The staff commands for logins: add with a login, deactivate, revoke a token, unlock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import Engine
from typer.testing import Result

from sscard import bootstrap
from sscard.access.auth import authenticate, login_staff
from sscard.bootstrap import Service, prepare
from sscard.cli.main import app
from sscard.core.errors import DomainError
from sscard.db.engine import make_engine
from sscard.demo import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.integration.test_cli import RUNNER, _operator_shell, db_url, invoke, says

__all__ = ["_operator_shell", "db_url"]


@pytest.fixture
def svc(db_url: str) -> Iterator[Service]:
    assert invoke("demo", "--database", db_url).exit_code == 0
    service = prepare(db_url)
    yield service
    service.engine.dispose()


def _add(db_url: str) -> tuple[int, str, str]:
    result = invoke("staff", "add", "SP01", "Li Lei", "--login", "Li.Lei", "-d", db_url)
    assert result.exit_code == 0, result.stderr
    staff = re.search(r"staff member (\d+): login li\.lei at SP01", result.stdout)
    password = re.search(r"initial password \(shown once\): (\S+)", result.stdout)
    token = re.search(r"\(shown once\): (ssc_\S+)", result.stdout)
    assert staff, result.stdout
    assert password, result.stdout
    assert token, result.stdout
    return int(staff[1]), password[1], token[1]


def test_staff_add_with_a_login_prints_a_one_time_password_that_logs_in(
    db_url: str, svc: Service
) -> None:
    _, password, token = _add(db_url)
    session = login_staff(
        svc.runtime, org_code="SP01", login="li.lei", password=password, totp=None, source="t"
    )
    assert authenticate(svc.runtime, bearer=session.token, source="t").actor.org_code == "SP01"
    assert authenticate(svc.runtime, bearer=token, source="t").actor.name == "Li Lei"


def test_staff_deactivate_ends_sessions_and_the_token(db_url: str, svc: Service) -> None:
    staff_id, password, token = _add(db_url)
    session = login_staff(
        svc.runtime, org_code="SP01", login="li.lei", password=password, totp=None, source="t"
    )
    result = invoke("staff", "deactivate", str(staff_id), "-d", db_url)
    assert result.exit_code == 0, result.stderr
    for bearer, code in ((session.token, "session_ended"), (token, "unauthenticated")):
        with pytest.raises(DomainError) as refused:
            authenticate(svc.runtime, bearer=bearer, source="t")
        assert refused.value.code == code
    again = invoke("staff", "deactivate", str(staff_id), "-d", db_url)
    assert again.exit_code == 2
    assert says(again.stderr, "already deactivated")


def test_staff_revoke_token_refuses_the_token_from_then_on(db_url: str, svc: Service) -> None:
    staff_id, _, token = _add(db_url)
    assert invoke("staff", "revoke-token", str(staff_id), "-d", db_url).exit_code == 0
    with pytest.raises(DomainError):
        authenticate(svc.runtime, bearer=token, source="t")
    assert invoke("staff", "revoke-token", "999999", "-d", db_url).exit_code == 2


def _typed(*args: str, typed: str) -> Result:
    """Run ``sscard ARGS`` with ``typed`` on standard input (closing its engines after)."""
    engines: list[Engine] = []

    def tracked(url: str | None = None, **kwargs: Any) -> Engine:
        engines.append(make_engine(url, **kwargs))
        return engines[-1]

    with patch.object(bootstrap, "make_engine", tracked):
        result = RUNNER.invoke(app, list(args), input=typed)
    for engine in engines:
        engine.dispose()
    return result


def test_staff_add_asks_for_the_password_and_refuses_one_breaking_the_rules(
    db_url: str, svc: Service
) -> None:
    args = ("staff", "add", "SP01", "Li Lei", "--login", "lilei", "--ask-password", "-d", db_url)
    digits = _typed(*args, typed="12345678901234\n12345678901234\n")
    assert digits.exit_code == 2
    assert says(digits.stderr, "a login password must not be only digits")
    chosen = _typed(*args, typed="a good long secret\na good long secret\n")
    assert chosen.exit_code == 0, chosen.stderr
    assert "a good long secret" not in chosen.stdout
    assert "initial password" not in chosen.stdout
    session = login_staff(
        svc.runtime,
        org_code="SP01",
        login="lilei",
        password="a good long secret",
        totp=None,
        source="t",
    )
    assert session.actor.name == "Li Lei"


def test_demo_prints_the_administrators_login_which_works(db_url: str, svc: Service) -> None:
    again = invoke("demo", "--database", db_url)
    assert says(again.stdout, f"login {ADMIN_LOGIN}, password {ADMIN_PASSWORD}")
    session = login_staff(
        svc.runtime,
        org_code="CENTER",
        login=ADMIN_LOGIN,
        password=ADMIN_PASSWORD,
        totp=None,
        source="t",
    )
    assert session.actor.role == "administrator"
