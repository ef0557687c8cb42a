"""The README's walk-through, run against a real `sscard serve --demo` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SSCARD = [sys.executable, "-m", "sscard.cli.main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSCARD_")}
    env["SSCARD_SWEEP_INTERVAL"] = "3600"
    env["HOME"] = str(tmp_path)
    return env


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    """The demo server; its whole output is kept in ``tmp_path / "server.log"``."""
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            *SSCARD,
            "serve",
            "--demo",
            "--port",
            str(port),
            "--database",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the demo server did not start within 30 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_readme_walkthrough_runs_a_card_from_application_to_replacement(
    demo_server: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "docs" / "walkthrough.sh")],
        cwd=tmp_path,
        env={**_env(tmp_path), "API": demo_server},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "accepted" in out
    assert any(line.startswith("the card is ready for pickup from") for line in out)
    assert out.count("active") >= 2  # activated, then resumed after the oral report lapsed
    assert "True" in out  # the hospital finds the card usable
    assert any("'amount_fen': 2000" in line and "'voucher_no': 'JF" in line for line in out)
    assert any("allowed next steps: none" in line and "R-3" in line for line in out)
    assert "lost_oral -> active system" in out
    assert out[-1] == "lost_written -> replaced outlet"
    assert (tmp_path / "form-barcode.svg").read_text().lstrip().startswith("<?xml")
    # The server logged every request of the walk-through, and no full identifier.
    server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert "POST /cards/" in server_log
    for secret in ("441900199103071235", "6222021000000000017", "482913"):
        assert secret not in server_log


def test_serve_refuses_a_bad_policy_file_with_line_and_reason(tmp_path: Path) -> None:
    source = (ROOT / "src" / "sscard" / "policies" / "dongguan.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(source.replace("oral_loss_natural_days = 5", "oral_loss_natural_days = 0"))
    line = next(
        i
        for i, text in enumerate(bad.read_text().splitlines(), 1)
        if text.startswith("oral_loss_natural_days")
    )
    result = subprocess.run(
        [
            *SSCARD,
            "serve",
            "--policy",
            str(bad),
            "--port",
            str(_free_port()),
            "--database",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"bad.toml:{line}: deadlines.oral_loss_natural_days" in result.stderr
