from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from fastapi.testclient import TestClient

from sscard.api.app import create_app
from sscard.runtime import Runtime
from tests.factories import World


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, sweep_interval=0), raise_server_exceptions=False) as c:
        yield c


# ------------------------------------------------------------------ cardholders
# A cardholder in self-service logs in for real (``World.cardholder_token``): every
# request goes through the bearer lookup of ``api.deps.get_actor``. Each call makes a
# fresh session, so a test that moves the clock never holds an expired one.


@pytest.fixture
def holder(world: World) -> Callable[[int], dict[str, str]]:
    """Headers acting as the cardholder of a person (self-service)."""

    def headers(person_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {world.cardholder_token(person_id)}"}

    return headers


@pytest.fixture
def as_cardholder(
    world: World, client: TestClient
) -> Callable[[int], AbstractContextManager[None]]:
    """``with as_cardholder(person_id): client.get("/self")`` acts as that cardholder."""

    @contextmanager
    def acting(person_id: int) -> Iterator[None]:
        before = client.headers.get("Authorization")
        client.headers["Authorization"] = f"Bearer {world.cardholder_token(person_id)}"
        try:
            yield
        finally:
            if before is None:
                client.headers.pop("Authorization", None)
            else:
                client.headers["Authorization"] = before

    return acting
