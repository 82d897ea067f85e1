"""Fixtures for the NATS bus and the live capacity feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed

from services.bus_nats import NatsBus
from tests.conftest import unavailable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_names() -> tuple[str, str]:
    """A stream name and a subject prefix no other test (or engineer) uses."""
    tag = uuid.uuid4().hex[:10]
    return f"TEST_LIVE_{tag.upper()}", f"t{tag}"


async def delete_stream(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def nats_names() -> tuple[str, str]:
    return unique_names()


@pytest.fixture
async def make_nats_bus(
    nats_url: str, nats_names: tuple[str, str]
) -> AsyncIterator[Callable[..., Any]]:
    """Start ``NatsBus`` instances on one unique stream; all closed and the stream deleted after."""
    stream, prefix = nats_names
    buses: list[NatsBus] = []

    async def _make(**kw: Any) -> NatsBus:
        bus = NatsBus(
            url=kw.pop("url", nats_url),
            stream=stream,
            subject_prefix=prefix,
            idle_heartbeat=kw.pop("idle_heartbeat", 0.5),
            **kw,
        )
        await bus.start()
        buses.append(bus)
        return bus

    yield _make
    for bus in buses:
        await bus.close()
    await delete_stream(nats_url, stream)


class PrivateNats:
    """A nats-server of our own (so that a test may stop and restart its broker)."""

    def __init__(self, binary: str, store: Path) -> None:
        self.binary = binary
        self.store = store
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("private nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    """Our own broker on a free port (never the machine's shared one)."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
    )
    if binary is None:
        unavailable("nats-server is not installed")
    server = PrivateNats(binary, tmp_path / "nats-store")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ServerThread:
    """A real uvicorn server for an ASGI app on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/capacity/live"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 15)


# -- the live feed on a real server -----------------------------------------------------


async def until_closed(ws: Any) -> tuple[int | None, list[dict[str, Any]]]:
    """Read a client socket until the server closes it: the close code and what came before."""
    seen: list[dict[str, Any]] = []
    try:
        while True:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), seen


def pool_row(pool_id: str, **over: Any) -> dict[str, Any]:
    """A pool snapshot with every field of the capacity service's payload."""
    row: dict[str, Any] = {
        "pool_id": pool_id,
        "facility_id": f"fac-{pool_id}",
        "facility_name": f"Refugio {pool_id}",
        "facility_kind": "refugio",
        "facility_status": "active",
        "operator_institution_id": "inst-1",
        "state": "09",
        "municipality": "Cuauhtémoc",
        "version": 1,
        "total": 10,
        "occupied": 2,
        "held": 0,
        "out_of_service": 0,
        "available": 8,
        "sexes": ["F"],
        "min_age": 18,
        "max_age": 99,
        "accepts_children": False,
        "max_child_age": None,
        "max_children": 0,
        "accepts_witnesses": False,
        "accepts_indirect_victims": False,
        "wheelchair_accessible": False,
        "migrants": True,
        "lgbtttiq": False,
        "interpreter_languages": [],
        "last_confirmed_at": "2026-11-23T09:00:00+00:00",
    }
    row.update(over)
    return row


def pool_event(row: dict[str, Any]) -> Any:
    from services.events import Event

    return Event(
        type="capacity.pool.changed",
        aggregate_type="pool",
        aggregate_id=row["pool_id"],
        aggregate_version=row["version"],
        payload=dict(row),
    )


class Feed:
    """A running app with the live feed, its bus, and the pools its snapshot shows."""

    def __init__(self, server: ServerThread, app: Any, pools: dict[str, dict[str, Any]]) -> None:
        self.server = server
        self.app = app
        self.pools = pools

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = self.runtime.state["loop"]
        return loop

    async def on_server(self, coro: Any) -> Any:
        """Run a coroutine on the server's event loop (where its bus lives)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def change(self, pool_id: str, **over: Any) -> int:
        """Change a pool (next version) in the 'database' and publish its event."""
        row = dict(self.pools.get(pool_id) or pool_row(pool_id))
        row.update(over)
        if "version" not in over:
            row["version"] = row["version"] + 1
        self.pools[pool_id] = row
        return int(await self.on_server(self.runtime.bus.publish(pool_event(row))))

    async def publish(self, event: Any) -> int:
        return int(await self.on_server(self.runtime.bus.publish(event)))


@pytest.fixture
def make_feed(test_verifier: Any) -> Callable[..., Any]:
    """``async with make_feed(options=..., bus=...) as feed``: a real uvicorn server."""
    from capacity.live import OPTIONS_KEY, live_router, set_snapshot_provider, start_live, stop_live
    from services.app import ServiceSpec, create_app
    from services.bus import InProcessBus

    @contextlib.asynccontextmanager
    async def _feed(
        *, options: Any = None, bus: Any = None, pools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[Feed]:
        rows = {p["pool_id"]: p for p in (pools or [])}

        def provider(filters: dict[str, Any]) -> list[dict[str, Any]]:
            return [dict(r) for r in rows.values()]

        async def remember_loop(runtime: Any) -> None:
            runtime.state["loop"] = asyncio.get_running_loop()

        spec = ServiceSpec(
            name="capacity",
            public_routers=[live_router],
            on_startup=[start_live],
            on_shutdown=[stop_live],
        )
        app = create_app([spec], bus=bus or InProcessBus(), extra_startup=[remember_loop])
        if options is not None:
            app.state.runtime.state[OPTIONS_KEY] = options
        set_snapshot_provider(provider)
        try:
            async with ServerThread(app) as server:
                yield Feed(server, app, rows)
        finally:
            set_snapshot_provider(None)

    return _feed
