"""``sscard events deliver``: one delivery round from the command line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from sscard.db.engine import make_engine
from sscard.events.model import new_secret
from sscard.events.tables import OutboxEvent, WebhookSubscription
from sscard.register.tables import Organization
from tests.events_receiver import receiver
from tests.integration.test_cli import _operator_shell, db_url, invoke, sweep_counts

__all__ = ["_operator_shell", "db_url"]  # the fixtures: a clean shell, a fresh database


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers listen on 127.0.0.1, and the deliverer checks every attempt."""
    monkeypatch.setenv("SSCARD_WEBHOOK_ALLOW_LOOPBACK", "1")


def test_events_deliver_fans_out_and_sends_every_due_webhook_once(db_url: str) -> None:
    assert invoke("db", "upgrade", "--database", db_url).exit_code == 0
    secret = new_secret()
    with receiver() as partner:
        engine = make_engine(db_url)
        try:
            with engine.begin() as conn:
                now = datetime.now(UTC)
                center = conn.execute(
                    insert(Organization)
                    .values(kind="center", code="C1", name="center", created_at=now)
                    .returning(Organization.id)
                ).scalar_one()
                conn.execute(
                    insert(WebhookSubscription).values(
                        org_id=center,
                        url=partner.url,
                        event_types=["*"],
                        state="active",
                        secret=secret,
                        created_at=now,
                    )
                )
                banks = conn.scalar(select(func.count()).select_from(OutboxEvent))
        finally:
            engine.dispose()
        ran = invoke("events", "deliver", "--database", db_url)
        assert ran.exit_code == 0, ran.stderr
        assert sweep_counts(ran.stdout)["delivered"] == banks
        again = invoke("events", "deliver", "--database", db_url)
        assert sweep_counts(again.stdout)["delivered"] == 0
        bodies = partner.verified(secret)
    assert banks
    assert [b["type"] for b in bodies] == ["bank.registered"] * banks
