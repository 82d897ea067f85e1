"""Fixtures for the NATS bus and the live capacity feed."""

from __future__ import annotations

import asyncio
import contextlib
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

from services.bus_nats import NatsBus
from tests.conftest import ON_CI


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
        if ON_CI:
            pytest.fail("nats-server is not installed (on CI this test must run)")
        pytest.skip("nats-server is not installed")
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
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets"
        )
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
