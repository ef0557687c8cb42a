"""The center's audit endpoints: filtered records by cursor, and the chain's verification (S-1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, update

from sscard.audit.sealer import seal
from sscard.audit.tables import AuditRecord
from sscard.cards.model import CardState
from sscard.register.model import OrgKind
from tests.factories import World
from tests.integration.test_audit_trail import triggers_off


def _auth(world: World, kind: OrgKind) -> dict[str, str]:
    # The audit trail is a supervisor's read (access.policy): every kind is asked as one.
    return {"Authorization": f"Bearer {world.token(kind, role='supervisor')}"}


def _walk(client: TestClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        url = f"/audit/records?limit=2&{query}" + (f"&after={after}" if after else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        after = page["next"]
        if after is None:
            return items


def test_s1_the_center_lists_audit_records_filtered_newest_first(
    world: World, client: TestClient
) -> None:
    center = _auth(world, OrgKind.CENTER)
    outlet = world.actor(OrgKind.OUTLET)
    card = world.card(CardState.ACTIVE)
    world.advance(days=1)
    later = world.rt.now()
    other = world.card(CardState.RECEIVED)

    mine = _walk(client, center, f"person_id={card.person_id}")
    assert mine
    assert {r["person_id"] for r in mine} == {card.person_id}
    assert [r["id"] for r in mine] == sorted((r["id"] for r in mine), reverse=True)
    assert len({r["id"] for r in mine}) == len(mine)
    assert "card.activate" in {r["action"] for r in mine}

    by_outlet = _walk(client, center, f"actor_org_id={outlet.org_id}&action=card.activate")
    assert {(r["actor_org_id"], r["action"]) for r in by_outlet} == {
        (outlet.org_id, "card.activate")
    }
    assert card.id in {r["subject_id"] for r in by_outlet}
    assert other.id not in {r["subject_id"] for r in by_outlet}

    since = later.isoformat().replace("+", "%2B")
    recent = _walk(client, center, f"since={since}&kind=change")
    assert recent
    assert {r["person_id"] for r in recent if r["person_id"]} == {other.person_id}
    assert all(r["kind"] == "change" for r in recent)
    until = (later - timedelta(seconds=1)).isoformat().replace("+", "%2B")
    earlier = _walk(client, center, f"until={until}&person_id={other.person_id}")
    assert earlier == []
    assert _walk(client, center, "kind=disclosure") == []


def test_s1_audit_records_are_for_the_center_only_and_bad_filters_are_refused(
    world: World, client: TestClient
) -> None:
    for kind in (OrgKind.OUTLET, OrgKind.SERVICE_POINT, OrgKind.HOSPITAL):
        for path in ("/audit/records", "/audit/verification"):
            response = client.get(path, headers=_auth(world, kind))
            assert response.status_code == 403, (kind, path)
            assert response.json()["code"] == "forbidden"
    center = _auth(world, OrgKind.CENTER)
    for query, field in (
        ("kind=gossip", "kind"),
        ("since=2026-03-02T09:00:00", "since"),
        ("since=2026-03-03T09:00:00%2B08:00&until=2026-03-02T09:00:00%2B08:00", "since"),
        ("limit=0", "limit"),
        ("after=garbage", "after"),
    ):
        response = client.get(f"/audit/records?{query}", headers=center)
        assert response.status_code == 422, (query, response.text)
        assert response.json()["field"] == field
    response = client.get("/audit/verification?from_seq=0", headers=center)
    assert response.status_code == 422


def test_s1_the_center_gets_the_verification_and_the_first_broken_entry(
    world: World, client: TestClient, connection: Connection
) -> None:
    center = _auth(world, OrgKind.CENTER)
    world.card(CardState.ACTIVE)
    total = seal(world.rt)
    body = client.get("/audit/verification", headers=center).json()
    assert body["intact"] is True
    assert body["complete"] is True
    assert (body["sealed"], body["checked"], body["broken"]) == (total, total, None)
    assert len(body["head_hash"]) == 64

    part = client.get("/audit/verification?limit=2", headers=center).json()
    assert (part["checked"], part["complete"], part["last_checked_seq"]) == (2, False, 2)

    with triggers_off(connection):
        connection.execute(
            update(AuditRecord).where(AuditRecord.chain_seq == 3).values(source="10.9.9.9")
        )
    body = client.get("/audit/verification", headers=center).json()
    assert body["intact"] is False
    assert body["checked"] == 2
    broken = body["broken"]
    assert (broken["chain_seq"], broken["problem"]) == (3, "hash_mismatch")
    records = client.get("/audit/records?limit=500", headers=center).json()["items"]
    (third,) = [r for r in records if r["chain_seq"] == 3]
    assert (broken["id"], broken["action"]) == (third["id"], third["action"])
    assert broken["occurred_at"] == third["occurred_at"]
