from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from fastapi.testclient import TestClient

from sscard.access.model import Actor
from sscard.api.app import create_app
from sscard.api.deps import get_actor
from sscard.register.model import OrgKind
from sscard.runtime import Runtime


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, sweep_interval=0), raise_server_exceptions=False) as c:
        yield c


# ---------------------------------------------------------------- cardholder stand-in
# Until the cardholder login lands, a test acts as a cardholder in self-service by
# overriding ``get_actor`` (the login will produce exactly this actor). Only here.


@pytest.fixture
def as_cardholder(client: TestClient) -> Callable[[int], AbstractContextManager[None]]:
    """``with as_cardholder(person_id): client.get("/self")`` acts as that cardholder."""

    @contextmanager
    def acting(person_id: int) -> Iterator[None]:
        actor = Actor(
            staff_id=None,
            org_id=None,
            org_kind=OrgKind.CARDHOLDER,
            org_code="SELF",
            person_id=person_id,
            name="cardholder",
            source="testclient",
        )
        client.app.dependency_overrides[get_actor] = lambda: actor  # type: ignore[attr-defined]
        try:
            yield
        finally:
            client.app.dependency_overrides.pop(get_actor, None)  # type: ignore[attr-defined]

    return acting
