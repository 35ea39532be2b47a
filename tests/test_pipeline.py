"""All shared payloads through ingest and the processor, in one process."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from genea_automate.app import Daemon
from genea_automate.config.loader import load_config
from tests.support.genea import SHARED_PAYLOADS, TEST_SECRET, signed_headers

CONFIG = """
store: "sqlite:///{folder}/store.db"
endpoints:
  main: {{secret: "{secret}"}}
"""


def readme_kinds() -> dict[str, str]:
    """file name -> the kind the shared README expects for it."""
    kinds = {}
    for line in (SHARED_PAYLOADS / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 4 and cells[1].startswith("`") and cells[1].endswith(".json`"):
            kinds[cells[1].strip("`")] = cells[4].split()[0]
    return kinds


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    config = tmp_path / "rules.yaml"
    config.write_text(CONFIG.format(folder=tmp_path, secret=TEST_SECRET))
    running = Daemon(load_config(config))
    await running.store.open()
    yield running
    await running.store.close()


async def test_every_shared_payload_is_stored_and_gets_its_kind(
    daemon: Daemon, tmp_path: Path
) -> None:
    expected = readme_kinds()
    assert len(expected) == 20
    transport = httpx.ASGITransport(app=daemon.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for name in expected:
            body = (SHARED_PAYLOADS / name).read_bytes()
            answer = await client.post(
                "/hooks/main", content=body, headers=signed_headers(body)
            )
            assert answer.json() == {"status": "stored"}, name
    assert await daemon.processor.run_once() == 20

    with sqlite3.connect(tmp_path / "store.db") as db:
        rows = db.execute(
            "SELECT body, state, kind FROM events ORDER BY seq"
        ).fetchall()
    bodies = {
        (SHARED_PAYLOADS / name).read_bytes(): kind for name, kind in expected.items()
    }
    assert [(state, kind) for _, state, kind in rows] == [
        ("decided", bodies[bytes(body)]) for body, _, _ in rows
    ]
