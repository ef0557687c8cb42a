from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from sscard.access.model import Actor
from sscard.api.app import create_app
from sscard.api.deps import RuntimeDep, client_address, get_actor
from sscard.register.model import OrgKind
from sscard.runtime import Runtime


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, sweep_interval=0), raise_server_exceptions=False) as c:
        yield c


# ------------------------------------------------------------------ cardholder stand-in
# REPLACED AFTER THE MERGE with cardholder login (routes under /auth): until then a
# cardholder's bearer token is "holder-<person_id>", read by this override of
# ``get_actor``; every other token still goes through the real staff lookup.
HOLDER_PREFIX = "holder-"


@pytest.fixture
def holder(client: TestClient) -> Iterator[Callable[[int], dict[str, str]]]:
    """Headers acting as the cardholder of a person (self-service)."""
    app = client.app
    assert isinstance(app, FastAPI)

    def actor(request: Request, rt: RuntimeDep) -> Actor:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        if token.startswith(HOLDER_PREFIX):
            return Actor(
                staff_id=None,
                org_id=None,
                org_kind=OrgKind.CARDHOLDER,
                org_code="SELF",
                person_id=int(token.removeprefix(HOLDER_PREFIX)),
                source=client_address(request),
            )
        return get_actor(request, rt)

    app.dependency_overrides[get_actor] = actor
    yield lambda person_id: {"Authorization": f"Bearer {HOLDER_PREFIX}{person_id}"}
    app.dependency_overrides.pop(get_actor, None)
