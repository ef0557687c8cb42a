"""Idempotency-Key: a retried card POST replays its first answer, never acts twice."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sscard.cards.tables import CardTransition, Fee
from sscard.register.model import OrgKind
from tests.factories import World


def _count(world: World, model: type, **where: object) -> int:
    with world.rt.uow() as uow:
        q = select(func.count()).select_from(model)
        for name, value in where.items():
            q = q.where(getattr(model, name) == value)
        return int(uow.session.scalar(q) or 0)


def test_retried_loss_report_is_replayed_not_repeated(world: World, client: TestClient) -> None:
    card = world.card("active")
    headers = {
        "Authorization": f"Bearer {world.token(OrgKind.OUTLET)}",
        "Idempotency-Key": "loss-1",
    }
    body = {"kind": "oral", "channel": "bank_phone"}
    first = client.post(f"/cards/{card.id}/loss-reports", headers=headers, json=body)
    again = client.post(f"/cards/{card.id}/loss-reports", headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(world, CardTransition, card_id=card.id, action="report_lost_oral") == 1


def test_key_reused_with_another_body_is_refused(world: World, client: TestClient) -> None:
    card = world.card("active")
    headers = {"Authorization": f"Bearer {world.token(OrgKind.OUTLET)}", "Idempotency-Key": "k-2"}
    client.post(
        f"/cards/{card.id}/loss-reports",
        headers=headers,
        json={"kind": "oral", "channel": "bank_phone"},
    )
    other = client.post(f"/cards/{card.id}/loss-reports", headers=headers, json={"kind": "written"})
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert _count(world, CardTransition, card_id=card.id, action="report_lost_written") == 0


def test_retried_replacement_charges_once(world: World, client: TestClient) -> None:
    card = world.card("lost_written")
    headers = {
        "Authorization": f"Bearer {world.token(OrgKind.OUTLET)}",
        "Idempotency-Key": "replace-7",
    }
    first = client.post(f"/cards/{card.id}/replacements", headers=headers, json={})
    again = client.post(f"/cards/{card.id}/replacements", headers=headers, json={})
    assert first.status_code == again.status_code == 201
    assert again.json()["fee"]["voucher_no"] == first.json()["fee"]["voucher_no"]
    assert _count(world, Fee, basis="replacement") == 1


def test_a_refusal_is_replayed_too(world: World, client: TestClient) -> None:
    card = world.card("received")
    headers = {
        "Authorization": f"Bearer {world.token(OrgKind.OUTLET)}",
        "Idempotency-Key": "early-replace",
    }
    first = client.post(f"/cards/{card.id}/replacements", headers=headers, json={})
    again = client.post(f"/cards/{card.id}/replacements", headers=headers, json={})
    assert first.status_code == again.status_code == 409
    assert again.json() == first.json()
    assert again.headers["content-type"].startswith("application/problem+json")
