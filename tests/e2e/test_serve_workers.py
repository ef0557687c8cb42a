"""``sscard serve --workers N``: several worker processes behind one address, one database."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from sqlalchemy.engine import make_url

from sscard.register.model import OrgKind
from sscard.runtime import Runtime
from tests.e2e.test_walkthrough import SSCARD, _free_port
from tests.factories import World
from tests.integration.test_accounts import ready_card


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _post(url: str, token: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        result: dict[str, object] = json.loads(answer.read())
        return result


def test_the_server_runs_several_workers_that_all_answer(
    committed_rt: Runtime, pg_url: str, tmp_path: Path
) -> None:
    world = World(committed_rt)
    card = ready_card(world, balance=1_000)
    token = world.token(OrgKind.HOSPITAL)
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    url = make_url(pg_url).render_as_string(hide_password=False)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            *SSCARD,
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
            "--database",
            url,
            "--sweep-interval",
            "0",
            "--delivery-interval",
            "0",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "server.log").read_text())
        assert len(_children(proc.pid)) >= 2  # the supervisor and its worker processes
        for _ in range(20):  # new connections land on either worker; each answers alike
            checked = _post(f"{base}/card-checks", token, {"card_number": card.card_number})
            assert checked["usable"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert proc.returncode in (0, -15)
    assert "Traceback" not in (tmp_path / "server.log").read_text()
