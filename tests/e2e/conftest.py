from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sscard.api.app import create_app
from sscard.runtime import Runtime


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt, sweep_interval=0), raise_server_exceptions=False) as c:
        yield c
