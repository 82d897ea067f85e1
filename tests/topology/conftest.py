"""The local topology, started once per module: every service its own process.

The cluster runs on free ports against a fresh PostgreSQL database and a NATS stream of
its own; it is stopped (every process it started) and the database dropped even when a
test fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cluster import Cluster, free_port, unique_name
from tests.conftest import NATS_URL, PG_ADMIN_URL, require_service

DEMO_PASSWORD = "canaliza-demo"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("NATS", "127.0.0.1", 4222)
    # Streams may not overlap in subjects: clear what an interrupted earlier run left behind
    # on the shared ``canaliza.>`` subjects (runs now have a subject prefix of their own, so
    # the streams of concurrent runs are left alone).
    _delete_topology_streams(only_subjects="canaliza.>")
    c = Cluster(
        database=unique_name("canaliza_topology"),
        pg_admin_url=PG_ADMIN_URL,
        nats_url=NATS_URL,
        nats_stream=unique_name("TOPOLOGY").upper(),
        nats_subject_prefix=unique_name("topology"),  # no overlap with concurrent runs
        gateway_port=free_port(),
        log_dir=Path(tmp_path_factory.mktemp("cluster-logs")),
        demo=True,
    )
    try:
        c.start(timeout=120)
        yield c
    finally:
        c.stop()
        _drop_database(c.database)
        _delete_topology_streams(only_name=c.nats_stream)


def _delete_topology_streams(
    *, only_subjects: str | None = None, only_name: str | None = None
) -> None:
    import asyncio

    import nats

    async def _run() -> None:
        nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
        try:
            js = nc.jetstream()
            for info in await js.streams_info():
                name = info.config.name or ""
                if not name.startswith("TOPOLOGY_"):
                    continue
                if only_name is not None and name != only_name:
                    continue
                if only_subjects is not None and only_subjects not in (info.config.subjects or []):
                    continue
                await js.delete_stream(name)
        finally:
            await nc.close()

    asyncio.run(_run())


def _drop_database(name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def password_token(base_url: str, username: str) -> str:
    """A demo user's access token from the auth service (password grant, demo mode)."""
    r = httpx.post(
        base_url + "/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": DEMO_PASSWORD,
            "client_id": "canaliza-cli",
        },
        timeout=15,
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until(check: Any, *, attempts: int = 100, pause: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (bounded by attempts, not time)."""
    last = None
    for _ in range(attempts):
        with contextlib.suppress(httpx.HTTPError):
            last = check()
            if last:
                return last
        time.sleep(pause)
    raise AssertionError(f"condition never held (last: {last!r})")


FACILITY = {
    "name": "Refugio Topología",
    "kind": "refugio",
    "state": "09",
    "municipality": "Cuauhtémoc",
    "address": "Calle Reservada 1, Col. Centro",
}

POOL = {
    "name": "Mujeres adultas",
    "sexes": ["F"],
    "min_age": 18,
    "max_age": 120,
    "total": 4,
    "accepts_children": False,
    "max_child_age": 0,
    "max_children": 0,
    "wheelchair_accessible": False,
}
