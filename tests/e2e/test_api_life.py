"""A card's whole life over HTTP, as the README walks through it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sscard.core.ids import luhn_complete
from sscard.register.model import OrgKind
from tests.factories import World, next_id_number


def auth(world: World, kind: OrgKind, bank: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(kind, bank)}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_card_life_over_http(
    world: World, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sp, outlet = auth(world, OrgKind.SERVICE_POINT), auth(world, OrgKind.OUTLET, "ICBC")
    bank, center = auth(world, OrgKind.BANK, "ICBC"), auth(world, OrgKind.CENTER)
    number = next_id_number()
    person = ok(
        client.post(
            "/persons",
            headers=sp,
            json={
                "id_number": number,
                "name": "陈小明",
                "status": "unemployed",
                "phone": "13912345678",
                "insured_since": "2025-01-01",
            },
        ),
        201,
    )
    assert person["id_number"] == number[:4] + "*" * 10 + number[-4:]
    assert person["phone"] == "139****5678"
    found = ok(client.post("/persons/search", headers=sp, json={"id_number": number}))
    assert found["id"] == person["id"]

    form = ok(
        client.post(
            "/applications", headers=sp, json={"person_id": person["id"], "bank_code": "ICBC"}
        ),
        201,
    )
    svg = client.get(f"/applications/{form['id']}/barcode.svg", headers=sp)
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    ok(
        client.post(
            f"/applications/{form['id']}/corrections",
            headers=sp,
            json={"photo_source": "id_card_authorisation"},
        )
    )
    ok(client.post(f"/applications/{form['id']}/return", headers=sp))
    ok(client.post(f"/applications/{form['id']}/check", headers=sp, json={"decision": "accept"}))
    card = ok(client.get(f"/cards?person_id={person['id']}", headers=center))["items"][0]
    assert card["state"] == "ordered"
    assert card["allowed_actions"] == ["produce"]

    early = client.post(f"/cards/{card['id']}/pickups", headers=outlet, json={"by": "holder"})
    assert early.status_code == 409
    assert early.json()["code"] == "illegal_transition"
    bank_card = luhn_complete("622202" + "123456789012")
    produced = ok(
        client.post(
            f"/cards/{card['id']}/production",
            headers=bank,
            json={
                "card_number": "A12345678",
                "serial": "SN1234567890",
                "bank_card_number": bank_card,
                "outlet_code": world.actor(OrgKind.OUTLET, "ICBC").org_code,
            },
        )
    )
    assert produced["card"]["bank_card_number"] == bank_card[:6] + "*" * 9 + bank_card[-4:]
    not_yet = client.post(f"/cards/{card['id']}/pickups", headers=outlet, json={"by": "holder"})
    assert not_yet.status_code == 409
    assert not_yet.json()["code"] == "not_yet_due"
    world.goto(world.working_days_after(world.rt.today(), 30))
    picked = ok(
        client.post(
            f"/cards/{card['id']}/pickups",
            headers=outlet,
            json={"by": "holder", "activate": True, "medical_password": "482913"},
        )
    )
    assert [t["action"] for t in picked["transitions"]] == ["pickup_by_holder", "activate"]

    check = ok(
        client.post(
            "/card-checks", headers=auth(world, OrgKind.HOSPITAL), json={"card_number": "A12345678"}
        )
    )
    assert check["usable"] is True

    oral = ok(
        client.post(
            f"/cards/{card['id']}/loss-reports",
            headers=outlet,
            json={"kind": "oral", "channel": "bank_phone"},
        )
    )
    assert oral["card"]["state"] == "lost_oral"
    world.advance(days=5, hours=1)
    swept = ok(client.post("/sweeps", headers=center))
    assert swept["applied"]["oral_report_lapsed"] == 1
    assert ok(client.get(f"/cards/{card['id']}", headers=center))["state"] == "active"

    written = ok(
        client.post(f"/cards/{card['id']}/loss-reports", headers=outlet, json={"kind": "written"})
    )
    assert written["card"]["state"] == "lost_written"
    assert written["fee"]["amount_fen"] == 0
    replaced = ok(client.post(f"/cards/{card['id']}/replacements", headers=outlet, json={}), 201)
    assert replaced["fee"]["amount_fen"] == 2000
    assert replaced["fee"]["voucher_no"]
    assert replaced["old_card"]["state"] == "replaced"
    assert replaced["new_card"]["state"] == "ordered"

    for path, body in (
        (f"/cards/{card['id']}/activations", {"channel": "outlet"}),
        (
            f"/cards/{card['id']}/loss-cancellations",
            {"written_report_no": written["card"]["written_report_no"]},
        ),
    ):
        refused = client.post(path, headers=outlet, json=body)
        assert refused.status_code == 409
        assert refused.json()["current_state"] == "replaced"
    dead = ok(
        client.post(
            "/card-checks", headers=auth(world, OrgKind.PHARMACY), json={"card_number": "A12345678"}
        )
    )
    assert dead["usable"] is False
    assert "R-3" in dead["reason"]

    history = ok(client.get(f"/cards/{card['id']}/transitions", headers=center))
    assert [h["to_state"] for h in history] == [
        "ordered",
        "at_outlet",
        "received",
        "active",
        "lost_oral",
        "active",
        "lost_written",
        "replaced",
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert number not in logged
    assert bank_card not in logged


def test_unit_batch_over_http(world: World, client: TestClient) -> None:
    unit = world.unit(bank="ICBC")
    for _ in range(2):
        world.person(unit=unit)
    sp = auth(world, OrgKind.SERVICE_POINT)
    issued = ok(
        client.post(
            "/batches",
            headers=sp,
            json={
                "unit_code": unit.code,
                "stage": "2026-Q1",
                "collector": {"name": "王芳", "id_number": next_id_number()},
            },
        ),
        201,
    )
    assert len(issued["forms"]) == 2
    for form in issued["forms"]:
        ok(
            client.post(
                f"/applications/{form['id']}/corrections",
                headers=sp,
                json={"photo_source": "id_card_authorisation"},
            )
        )
    batch_id = issued["batch"]["id"]
    ok(client.post(f"/batches/{batch_id}/return", headers=sp))
    summary = ok(client.post(f"/batches/{batch_id}/check", headers=sp, json={}))
    assert summary["accepted"] == 2
    assert summary["rejected"] == 0
    assert all("*" in line["id_number"] for line in summary["lines"])
    assert summary["cards_ready_on"] == (world.working_days_after(world.rt.today(), 30).isoformat())


def test_demo_clock_is_refused_outside_the_demo(world: World, client: TestClient) -> None:
    response = client.post("/demo/clock", headers=auth(world, OrgKind.CENTER), json={"days": 5})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_working_days_endpoint_marks_provisional_dates(world: World, client: TestClient) -> None:
    center = {"Authorization": f"Bearer {world.token(OrgKind.CENTER, role='supervisor')}"}
    known = ok(client.get("/calendar/working-days?start=2026-09-01&days=30", headers=center))
    assert known["provisional"] is False
    beyond = ok(client.get("/calendar/working-days?start=2026-12-20&days=30", headers=center))
    assert beyond["provisional"] is True
    loaded = client.post(
        "/calendar/schedules",
        headers={**center, "content-type": "application/toml"},
        content='year = 2027\nholidays = ["2027-01-01"]\nworkdays = []\n',
    )
    assert loaded.status_code == 200, loaded.text
    again = ok(client.get("/calendar/working-days?start=2026-12-20&days=30", headers=center))
    assert again["provisional"] is False
    # 2027-01-01 is a Friday: as a loaded holiday it pushes the date one working day on.
    assert again["date"] > beyond["date"]
