"""Bad input at every endpoint: a clear 4xx problem document, and nothing half written."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sscard.audit.tables import AuditRecord
from sscard.db.models import Base
from sscard.register.model import OrgKind
from tests.factories import World, next_id_number

PUBLIC = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# The login endpoints take no bearer value: they hand one out.
LOGINS = {("/auth/sessions", "post"), ("/self/sessions", "post"), ("/self/registrations", "post")}


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path not in PUBLIC
    ]


def _row_counts(world: World) -> dict[str, int]:
    """Rows per table, leaving out the access log (a list that answers 200 is a read)."""
    with world.rt.uow() as uow:
        counts = {
            t.name: int(uow.session.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }
        counts["audit_records"] -= int(
            uow.session.scalar(
                select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "inquiry")
            )
            or 0
        )
        return counts


def _is_problem(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"]
    assert body["detail"]
    assert body["status"] == response.status_code


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def test_every_endpoint_refuses_requests_without_a_token(world: World, client: TestClient) -> None:
    for path, method, _ in _operations(client):
        if (path, method) in LOGINS:
            continue
        response = client.request(method, _fill(path, "1"))
        _is_problem(response)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "unauthenticated"


def test_every_endpoint_refuses_bad_input_and_writes_nothing(
    world: World, client: TestClient
) -> None:
    world.card("active")  # something to trip over
    tokens = [
        world.token(kind)
        for kind in (OrgKind.CENTER, OrgKind.SERVICE_POINT, OrgKind.OUTLET, OrgKind.BANK)
    ]
    before = _row_counts(world)
    bodies: list[dict[str, Any]] = [
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"json": []},
        {"json": {"unexpected": 1}},
        {"json": {"id_number": "1" * 18, "name": "", "bank_code": 7, "channel": None}},
    ]
    checked = 0
    for path, method, op in _operations(client):
        if "requestBody" not in op and not op.get("parameters"):
            continue  # nothing to get wrong (e.g. POST /sweeps)
        for token in tokens:
            for ident in ("999999999", "abc", "-1"):
                for body in bodies if method == "post" else [{}]:
                    headers = {"Authorization": f"Bearer {token}", **body.get("headers", {})}
                    kwargs = {k: v for k, v in body.items() if k != "headers"}
                    response = client.request(method, _fill(path, ident), headers=headers, **kwargs)
                    if method == "get" and "{" not in path and response.status_code == 200:
                        continue  # a plain list is a fine answer to a GET
                    _is_problem(response)
                    checked += 1
        assert op.get("responses")
    assert checked > 100
    assert _row_counts(world) == before


def test_invalid_identifier_names_the_reason_and_field(world: World, client: TestClient) -> None:
    sp = {"Authorization": f"Bearer {world.token(OrgKind.SERVICE_POINT)}"}
    good = next_id_number()
    bad = good[:17] + ("0" if good[-1] != "0" else "1")
    response = client.post("/persons", headers=sp, json={"id_number": bad, "name": "王五"})
    _is_problem(response)
    body = response.json()
    assert body["code"] == "invalid_identifier"
    assert body["field"] == "id_number"
    assert "check character" in body["detail"]
    assert bad not in response.text  # the refused number is echoed only masked


def test_illegal_transition_names_state_and_allowed_steps(world: World, client: TestClient) -> None:
    card = world.card("received")
    outlet = {"Authorization": f"Bearer {world.token(OrgKind.OUTLET)}"}
    response = client.post(f"/cards/{card.id}/replacements", headers=outlet, json={})
    _is_problem(response)
    body = response.json()
    assert body["code"] == "illegal_transition"
    assert body["current_state"] == "received"
    assert "activate" in body["allowed"]
    assert "report_lost_oral" in body["allowed"]


def test_s_1_forbidden_for_the_wrong_party_not_found_outside_its_scope(
    world: World, client: TestClient
) -> None:
    card = world.card("received")
    pharmacy = {"Authorization": f"Bearer {world.token(OrgKind.PHARMACY)}"}
    response = client.post(
        f"/cards/{card.id}/loss-reports", headers=pharmacy, json={"kind": "written"}
    )
    _is_problem(response)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    other_bank = {"Authorization": f"Bearer {world.token(OrgKind.OUTLET, 'BOC')}"}
    response = client.get(f"/cards/{card.id}", headers=other_bank)
    assert response.status_code == 404


def test_cursor_pagination_walks_every_card_once(world: World, client: TestClient) -> None:
    made = {c.id for c in world.cards(5, "ordered")}
    center = {"Authorization": f"Bearer {world.token(OrgKind.CENTER)}"}
    seen: list[int] = []
    after = None
    while True:
        url = "/cards?limit=2" + (f"&after={after}" if after else "")
        page = client.get(url, headers=center).json()
        seen += [c["id"] for c in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert made <= set(seen)
    assert len(seen) == len(set(seen))
    bad = client.get("/cards?after=garbage", headers=center)
    _is_problem(bad)
    assert bad.json()["field"] == "after"


def test_unexpected_error_is_a_500_problem_without_personal_data_in_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from sscard.api.app import create_app

    number = next_id_number()
    app = create_app(world.rt, sweep_interval=0)

    @app.get("/boom")
    def boom() -> None:
        raise ValueError(f"cannot handle {number}")

    caplog.set_level(logging.DEBUG)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert number not in response.text
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "ValueError" in logged
    assert number not in logged
