"""NATS stopped and started while capacity changes: no event lost, none delivered twice.

The capacity service runs on a real uvicorn server with the NATS bus on our own broker;
live-feed clients are connected over WebSocket. Ledger entries keep coming before, during
and after the broker's outage (they commit to the database; the outbox keeps their events
and the relay retries). Afterwards every client must have seen, for every pool, each new
version exactly once and in order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from capacity.database import db
from capacity.main import service
from services.app import create_app
from services.bus_nats import NatsBus
from services.settings import get_settings
from tests.live.conftest import ServerThread
from tests.resilience.faults.conftest import Actors, facility_with_pools
from tests.resilience.faults.record import record_fault
from tests.resilience.faults.servers import OwnNats

pytestmark = pytest.mark.resilience

CLIENTS = 3
POOLS = 3
PER_PHASE = 15  # ledger entries before, during and after the outage


class LiveClient:
    """A live-feed WebSocket client recording the versions it receives per pool."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.snapshot: dict[str, int] = {}
        self.versions: dict[str, list[int]] = {}
        self.closed: str | None = None

    @classmethod
    async def open(cls, url: str, token: str) -> LiveClient:
        ws = await connect(url)
        client = cls(ws)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert (await client.next())["type"] == "ready"
        await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "09"}}))
        snap = await client.next()
        assert snap["type"] == "snapshot", snap
        client.snapshot = {p["pool_id"]: p["version"] for p in snap["pools"]}
        return client

    async def next(self) -> dict[str, Any]:
        while True:
            msg: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if msg["type"] != "ping":
                return msg

    async def listen(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg["type"] == "pool":
                    self.versions.setdefault(msg["pool_id"], []).append(msg["version"])
        except Exception as exc:  # recorded: a dropped feed fails the test
            self.closed = f"{type(exc).__name__}: {exc}"
        else:
            self.closed = f"closed {self.ws.close_code}"


async def test_nats_restart_during_updates_loses_and_doubles_no_event(
    tmp_path, own_nats: OwnNats, actors: Actors
) -> None:
    db.configure(f"sqlite:///{tmp_path}/capacity.db")
    get_settings().auto_migrate = True
    stream = f"RESIL_{uuid.uuid4().hex[:10].upper()}"
    bus = NatsBus(url=own_nats.url, stream=stream, idle_heartbeat=0.5, reconnect_wait=0.2)
    app = create_app([service()], bus=bus)
    expected: dict[str, list[int]] = {}
    coordinator = actors.coordinator()

    async def update(http: httpx.AsyncClient, n: int, pool_ids: list[str]) -> None:
        pool_id = pool_ids[n % len(pool_ids)]
        r = await http.post(
            f"/api/v1/pools/{pool_id}/ledger",
            json={"kind": "admit", "beds": 1, "reason": f"ingreso {n}"},
            headers=coordinator,
        )
        assert r.status_code == 201, r.text
        expected.setdefault(pool_id, []).append(r.json()["pool"]["version"])

    try:
        async with (
            ServerThread(app) as server,
            httpx.AsyncClient(base_url=server.http_url, timeout=30) as http,
        ):
            _, pools = await facility_with_pools(http, actors, *([100] * POOLS))
            pool_ids = [p["id"] for p in pools]
            clients = [
                await LiveClient.open(server.ws_url, actors.make_token("prosecutor", ttl=3600))
                for _ in range(CLIENTS)
            ]
            listeners = [asyncio.create_task(c.listen()) for c in clients]
            n = 0
            for _ in range(PER_PHASE):
                await update(http, n, pool_ids)
                n += 1
            await asyncio.to_thread(own_nats.stop)
            for _ in range(PER_PHASE):  # committed; the outbox holds the events
                await update(http, n, pool_ids)
                n += 1
            await asyncio.to_thread(own_nats.start)  # same port, same store
            for _ in range(PER_PHASE):
                await update(http, n, pool_ids)
                n += 1

            def complete(c: LiveClient) -> bool:
                return all(c.versions.get(pid, [])[-1:] == [vs[-1]] for pid, vs in expected.items())

            for _ in range(600):  # bounded by attempts: at most ~60 s
                if all(complete(c) for c in clients) or any(c.closed for c in clients):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # room for a duplicate to show up, if any
            for c in clients:
                await c.ws.close()
            for task in listeners:
                await task
    finally:
        db.dispose()
        await _delete_stream(own_nats.url, stream)

    lost = duplicated = 0
    problems = []
    for i, c in enumerate(clients):
        for pid, want in expected.items():
            want_after = [v for v in want if v > c.snapshot.get(pid, 0)]
            got = c.versions.get(pid, [])
            lost += len(set(want_after) - set(got))
            duplicated += len(got) - len(set(got))
            if got != want_after:
                problems.append(f"client {i} pool {pid[:8]}: got {got}, want {want_after}")
    record_fault(
        "nats_restart_during_updates",
        injected=1,
        requests_lost=0,
        events_lost=lost,
        events_duplicated=duplicated,
        detail=(
            f"NATS stopped and started during {n} ledger entries on {POOLS} pools; "
            f"{CLIENTS} live clients each checked for gap-free, unrepeated versions per pool"
        ),
    )
    assert not problems, problems
    assert not [c.closed for c in clients if c.closed and not c.closed.startswith("closed 1000")]
    assert sum(len(v) for v in expected.values()) == 3 * PER_PHASE


async def _delete_stream(url: str, stream: str) -> None:
    import contextlib

    bus = NatsBus(url=url, stream=stream, start_timeout=5)
    with contextlib.suppress(Exception):
        await bus.start()
        await bus._jetstream().delete_stream(stream)
    await bus.close()
