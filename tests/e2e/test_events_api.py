"""Partner events over HTTP: subscribe, signed deliveries, the feed, failures, replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks import Webhook

from sscard.audit.tables import AuditRecord
from sscard.cards.model import CardState
from sscard.events import endpoints, fanout
from sscard.events.delivery import deliver
from sscard.events.tables import OutboxEvent, WebhookDelivery
from sscard.register.model import OrgKind
from sscard.runtime import Runtime
from tests.e2e.test_auth_api import (
    bearer,
    cardholder,
    login,
    member,
    register,
    self_login,
    session_of,
)
from tests.events_receiver import receiver
from tests.factories import World


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSCARD_WEBHOOK_ALLOW_LOOPBACK", "1")


def auth(world: World, kind: OrgKind, bank: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(kind, bank)}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _now(world: World) -> None:
    world.clock.set(datetime.now(ZoneInfo("Asia/Shanghai")))


def test_a_bank_subscribes_and_receives_its_cards_events_signed(
    world: World, client: TestClient, rt: Runtime
) -> None:
    bank = auth(world, OrgKind.BANK, "ICBC")
    with receiver() as partner:
        made = ok(
            client.post(
                "/webhooks", headers=bank, json={"url": partner.url, "event_types": ["card.*"]}
            ),
            201,
        )
        assert made["secret"].startswith("whsec_")
        assert made["state"] == "active"
        listed = ok(client.get("/webhooks", headers=bank))["items"]
        assert [w["id"] for w in listed] == [made["id"]]
        assert "secret" not in listed[0]
        world.card(CardState.RECEIVED)
        world.card(CardState.RECEIVED, bank="CCB")
        _now(world)
        deliver(rt)
        bodies = partner.verified(made["secret"])
        assert [b["type"] for b in bodies] == ["card.ordered", "card.produced", "card.picked_up"]
        assert all(b["data"]["detail"].get("bank_code", "ICBC") == "ICBC" for b in bodies)  # type: ignore[index]

        rotated = ok(client.post(f"/webhooks/{made['id']}/secret-rotations", headers=bank))
        assert rotated["secret"] != made["secret"]
        world.card(CardState.ORDERED)
        deliver(rt)
        last = partner.delivered()[-1]
        assert len(last.headers["webhook-signature"].split(" ")) == 2  # both, during the overlap
        for secret in (made["secret"], rotated["secret"]):
            assert Webhook(secret).verify(last.body, last.headers)["type"] == "card.ordered"


def test_the_event_feed_pages_a_partners_visible_events_in_order(
    world: World, client: TestClient, rt: Runtime
) -> None:
    world.card(CardState.ACTIVE)
    deliver(rt)  # fans out
    bank, other = auth(world, OrgKind.BANK, "ICBC"), auth(world, OrgKind.BANK, "CCB")
    first = ok(client.get("/events?limit=2", headers=bank))
    second = ok(client.get(f"/events?limit=2&after={first['next']}", headers=bank))
    ids = [e["data"]["id"] for e in first["items"] + second["items"]]
    assert len(ids) == 4
    assert ids == sorted(ids, key=lambda i: int(i[4:]))
    assert ok(client.get("/events", headers=other))["items"] == []
    refused = client.get("/events?after=nonsense", headers=bank)
    assert refused.status_code == 422
    assert refused.json()["field"] == "after"


def test_endpoints_and_event_types_are_checked(world: World, client: TestClient) -> None:
    unit = auth(world, OrgKind.SERVICE_POINT)
    for url in ("ftp://x.example/", "http://user:pw@127.0.0.1/x", "http://10.0.0.8/hook"):
        refused = client.post("/webhooks", headers=unit, json={"url": url})
        assert (refused.status_code, refused.json()["code"]) == (422, "unsafe_endpoint"), url
    bad = client.post(
        "/webhooks", headers=unit, json={"url": "http://127.0.0.1:9/x", "event_types": ["nope"]}
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_input"


def test_pause_resume_delete_and_another_organizations_webhook(
    world: World, client: TestClient
) -> None:
    bank, other = auth(world, OrgKind.BANK, "ICBC"), auth(world, OrgKind.BANK, "CCB")
    made = ok(client.post("/webhooks", headers=bank, json={"url": "http://127.0.0.1:9/x"}), 201)
    path = f"/webhooks/{made['id']}"
    assert ok(client.post(f"{path}/pause", headers=bank))["state"] == "paused"
    again = client.post(f"{path}/pause", headers=bank)
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    assert ok(client.post(f"{path}/resume", headers=bank))["state"] == "active"
    assert client.get(path, headers=other).status_code == 404
    assert client.delete(path, headers=other).status_code == 404
    assert client.delete(path, headers=bank).status_code == 204
    assert client.get(path, headers=bank).status_code == 404


def test_dead_letters_attempts_redelivery_and_replay_over_http(
    world: World, client: TestClient, rt: Runtime
) -> None:
    bank, center = auth(world, OrgKind.BANK, "ICBC"), auth(world, OrgKind.CENTER)
    with receiver(status=410) as partner:
        made = ok(
            client.post(
                "/webhooks",
                headers=bank,
                json={"url": partner.url, "event_types": ["card.produced", "card.ordered"]},
            ),
            201,
        )
        path = f"/webhooks/{made['id']}"
        world.card(CardState.AT_OUTLET)
        _now(world)
        deliver(rt)
        dead = ok(client.get(f"{path}/failures", headers=bank))["items"]
        assert [d["last_status"] for d in dead] == [410, 410]
        assert [d["id"] for d in ok(client.get("/webhook-failures", headers=center))["items"]] == [
            d["id"] for d in dead
        ]
        assert client.get("/webhook-failures", headers=bank).status_code == 403
        attempts = ok(client.get(f"{path}/attempts?limit=1", headers=bank))
        assert attempts["items"][0]["outcome"] == "dead"
        assert attempts["next"]
        partner.status = 200
        ok(client.post(f"{path}/failures/{dead[0]['id']}/redelivery", headers=bank), 202)
        deliver(rt)
        assert partner.verified(made["secret"])[0]["data"]["id"] == dead[0]["event_id"]  # type: ignore[index]
        replay = ok(client.post(f"{path}/replays", headers=bank, json={"after": None}), 202)
        assert replay == {"queued": 2, "next": None}
        deliver(rt)
        assert len(partner.delivered()) == 3


def test_an_endpoint_whose_host_does_not_resolve_is_refused_saying_what_to_do(
    world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = {"partner.example": ["93.184.216.34"], "intranet.example": ["10.2.3.4"]}
    monkeypatch.setattr(endpoints, "resolve", lambda host: table.get(host, []))
    bank = auth(world, OrgKind.BANK, "ICBC")
    for url in ("https://nowhere.example/hook", "https://intranet.example/hook"):
        refused = client.post("/webhooks", headers=bank, json={"url": url})
        problem = refused.json()
        assert (refused.status_code, problem["code"], problem["field"]) == (
            422,
            "unsafe_endpoint",
            "url",
        ), url
        assert "A/AAAA records all point to public internet addresses" in problem["detail"]
        assert "10.2.3.4" not in refused.text
    made = client.post("/webhooks", headers=bank, json={"url": "https://partner.example/hook"})
    assert made.status_code == 201, made.text


def test_logins_credentials_and_self_service_write_no_partner_event(
    world: World, client: TestClient, rt: Runtime
) -> None:
    _, _, org = member(world, kind=OrgKind.HOSPITAL, login="boss", role="administrator")
    person, card_number = cardholder(world)
    center = auth(world, OrgKind.CENTER)
    hook = ok(client.post("/webhooks", headers=center, json={"url": "http://127.0.0.1:9/c"}), 201)
    assert hook["event_types"] == ["*"]  # the center hears of everything
    deliver(rt)  # what came before is fanned out
    before = _outbox(rt)
    queued = _owed(rt, hook["id"])

    refused = login(client, "ATTACKER-CHOSEN", "nobody", "wrong password 1")  # anonymous
    assert refused.status_code == 401
    assert login(client, org, "boss", "wrong password 1").status_code == 401
    admin = session_of(client, org, "boss")  # a successful login
    made = ok(client.post("/credentials", headers=bearer(admin), json={"system_name": "HIS"}), 201)
    ok(client.post(f"/credentials/{made['id']}/rotations", headers=bearer(admin), json={}))
    assert register(client, person, card_number).status_code == 201  # self-service login
    assert self_login(client, person).status_code == 201

    with rt.uow() as uow:
        written = set(
            uow.session.scalars(select(AuditRecord.action).where(AuditRecord.id > before[1]))
        )
    assert {
        "auth.login_failed",
        "auth.session_opened",
        "credential.created",
        "credential.rotated",
        "self.login_registered",
    } <= written  # the changes were audited...
    assert _outbox(rt)[0] == before[0]  # ...and none of them became a partner event
    deliver(rt)
    assert _owed(rt, hook["id"]) == queued  # nothing more for the center's "*" webhook


def _owed(rt: Runtime, sub_id: int) -> int:
    with rt.uow() as uow:
        return int(
            uow.session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub_id)
            )
            or 0
        )


def _outbox(rt: Runtime) -> tuple[int, int]:
    """(outbox events, last audit record id)."""
    with rt.uow() as uow:
        s = uow.session
        return (
            int(s.scalar(select(func.count()).select_from(OutboxEvent)) or 0),
            int(s.scalar(select(func.max(AuditRecord.id))) or 0),
        )


def test_a_repeated_replay_queues_nothing_twice_and_a_full_queue_is_refused(
    world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = auth(world, OrgKind.BANK, "ICBC")
    made = ok(client.post("/webhooks", headers=bank, json={"url": "http://127.0.0.1:9/x"}), 201)
    path = f"/webhooks/{made['id']}"
    ok(client.post(f"{path}/pause", headers=bank))
    world.card(CardState.RECEIVED)
    world.card(CardState.RECEIVED)
    deliver(world.rt)  # fans out: every event is pending (paused)
    for _ in range(3):
        again = ok(client.post(f"{path}/replays", headers=bank, json={"after": None}), 202)
        assert again == {"queued": 0, "next": None}
    monkeypatch.setattr(fanout, "MAX_PENDING", 2)
    full = client.post(f"{path}/replays", headers=bank, json={"after": None})
    problem = full.json()
    assert (full.status_code, problem["code"]) == (409, "replay_backlog")
    assert "ask again with the same cursor" in problem["detail"]
