"""The local topology, started once per test session: every service its own process.

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

from canaliza.cluster import Cluster, free_port, unique_name
from tests.conftest import NATS_URL, PG_ADMIN_URL, require_service

DEMO_PASSWORD = "canaliza-demo"
STREAM_PREFIX = "CANALIZA_TOPO_"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("NATS", "127.0.0.1", 4222)
    # Its own stream on its own subjects (``canaliza_topo_….>``): streams may not overlap
    # in subjects, and other runs share this NATS server.
    name = unique_name(STREAM_PREFIX.lower().rstrip("_"))
    _delete_topology_streams(older_than_seconds=3600)  # left by an interrupted earlier run
    c = Cluster(
        database=unique_name("canaliza_topology"),
        pg_admin_url=PG_ADMIN_URL,
        nats_url=NATS_URL,
        nats_stream=name.upper(),
        nats_subject_prefix=name,
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
        _delete_topology_streams(only=c.nats_stream)


def _delete_topology_streams(
    *, only: str | None = None, older_than_seconds: float | None = None
) -> None:
    """Delete this run's stream (``only``), or stale ones of crashed runs (by prefix)."""
    import asyncio
    from datetime import UTC, datetime

    import nats

    async def _run() -> None:
        nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
        try:
            js = nc.jetstream()
            for info in await js.streams_info():
                name = info.config.name or ""
                if only is not None:
                    stale = name == only
                else:
                    created = info.created
                    age = (
                        (datetime.now(UTC) - created).total_seconds()
                        if isinstance(created, datetime)
                        else 0.0
                    )
                    stale = name.startswith(STREAM_PREFIX) and age > (older_than_seconds or 0)
                if stale:
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


class LiveClient:
    """A live-feed client in a thread, as docs/live-feed.md tells clients to behave.

    It connects to ``url``, authenticates with its first message, subscribes and keeps the
    highest ``sequence`` seen and each pool's versions. When its connection drops it
    reconnects to ``fallback_url`` (the gateway), subscribes with ``resume_from`` and goes
    on; a ``pool`` message not newer than what it holds is ignored.
    """

    def __init__(
        self, url: str, token: str, filters: dict[str, Any], *, fallback_url: str | None = None
    ) -> None:
        import threading

        self.urls = [url, fallback_url or url]
        self.token = token
        self.filters = filters
        self.sequence: int | None = None
        self.pools: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[int]] = {}
        self.snapshots = 0
        self.resets = 0
        self.connections: list[str] = []
        self.drops: list[str] = []
        self.errors: list[Any] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def wait_ready(self) -> None:
        assert self._ready.wait(60), f"no snapshot (errors: {self.errors})"

    def pool(self, pool_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.pools.get(pool_id)

    def describe(self) -> str:
        """What the client went through (for a failing assertion's message)."""
        with self._lock:
            return repr(
                {
                    "connections": self.connections,
                    "drops": self.drops[-5:],
                    "errors": self.errors,
                    "sequence": self.sequence,
                    "snapshots": self.snapshots,
                    "resets": self.resets,
                    "versions": {k: v[-8:] for k, v in self.versions.items()},
                }
            )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=20)

    def _run(self) -> None:
        import json

        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        attempt = 0
        while not self._stop.is_set() and attempt < 200:
            url = self.urls[0 if not self.connections else 1]
            ws_url = "ws" + url.removeprefix("http") + "/api/v1/capacity/live"
            try:
                with connect(ws_url, open_timeout=10) as ws:
                    self.connections.append(url)
                    ws.send(json.dumps({"type": "auth", "token": self.token}))
                    ready = json.loads(ws.recv(timeout=20))
                    if ready.get("type") != "ready":
                        self.errors.append(ready)
                        return
                    sub: dict[str, Any] = {"type": "subscribe", "filters": self.filters}
                    if self.sequence is not None:
                        sub["resume_from"] = self.sequence
                    ws.send(json.dumps(sub))
                    while not self._stop.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        self._take(json.loads(raw))
                    return
            except (ConnectionClosed, OSError, InvalidHandshake, InvalidStatus, TimeoutError) as e:
                self.drops.append(f"{url}: {type(e).__name__} {e}")
            attempt += 1
            time.sleep(min(0.1 * attempt, 1.0))  # back-off before reconnecting

    def _take(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        with self._lock:
            if kind == "snapshot":
                self.snapshots += 1
                self.resets += bool(msg.get("reset"))
                self.pools = {p["pool_id"]: p for p in msg["pools"]}
                self.versions = {p["pool_id"]: [p["version"]] for p in msg["pools"]}
                self._ready.set()
            elif kind == "pool":
                seen = self.versions.setdefault(msg["pool_id"], [])
                if not seen or msg["version"] > seen[-1]:
                    seen.append(msg["version"])
                    self.pools[msg["pool_id"]] = msg
            elif kind == "error":
                self.errors.append(msg)
            if isinstance(msg.get("sequence"), int):
                self.sequence = max(self.sequence or 0, msg["sequence"])
