"""Benchmark: the live capacity feed against a bare ``websockets`` broadcast server.

Same process, same client harness, same messages, same number of clients, one after the
other. Our side: a real uvicorn server with the feed (auth, filters, fan-out by filter
class) fed by events published on the bus. Bare side: ``websockets.broadcast`` of the
same JSON — the floor. Each message carries the time it was published (the moment the
outbox relay hands a committed ledger entry to the bus); clients record the delivery
latency. For each number of subscribers the events per second are lowered so that every
side has the same deliveries per second to make (``--budget``).

Shapes (``--shapes``): ``feed`` (one process, in-process bus), ``ledger`` (the capacity
service itself: from ``POST /pools/{id}/ledger`` through the commit, the outbox relay and
the bus to the client), ``replicas`` (two capacity
server processes on NATS JetStream, clients split between them, events published on
NATS as the relay does), ``proxy`` (through the web UI's ``/live``, which relays each
browser's socket to capacity in process, as in the main job).

The subscribers run in a process of their own (``--same-process``: beside the server, as
before, sharing its GIL); the server and the publisher in this one. Each line also gives
the CPU per delivery of each side while the events go out, and the cores busy: on a 2-core
machine, near 2.0 the machine is saturated (near 1.0 with ``--same-process``), and the
latencies are its queue.

    .venv/bin/python -m bench.live_feed --clients 1,500,5000 --shapes feed,replicas,proxy
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import resource
import socket
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

from capacity.live import (
    HUB_KEY,
    OPTIONS_KEY,
    LiveOptions,
    live_router,
    set_snapshot_provider,
    start_live,
    stop_live,
)
from services import security
from services.app import ServiceSpec, create_app, freeze_heap, tune_collector
from services.bus import Bus, InProcessBus
from services.events import Event
from services.settings import get_settings
from services.tokens import StaticKeySource, TokenVerifier


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pool(i: int, version: int, sent_at: float) -> dict[str, Any]:
    return {
        "pool_id": f"pool-{i}",
        "facility_id": f"fac-{i}",
        "facility_name": f"Refugio {i}",
        "facility_kind": "refugio",
        "facility_status": "active",
        "operator_institution_id": "inst",
        "state": "09",
        "municipality": "Cuauhtémoc",
        "version": version,
        "total": 20,
        "occupied": version % 20,
        "held": 0,
        "out_of_service": 0,
        "available": 20 - version % 20,
        "sexes": ["F"],
        "min_age": 18,
        "max_age": 99,
        "accepts_children": True,
        "max_child_age": 12,
        "max_children": 3,
        "accepts_witnesses": False,
        "accepts_indirect_victims": True,
        "wheelchair_accessible": False,
        "migrants": True,
        "lgbtttiq": False,
        "interpreter_languages": [],
        "last_confirmed_at": "2026-11-23T09:00:00+00:00",
        "sent_at": sent_at,
    }


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failed = 0
        self.first: float | None = None
        self.last = 0.0

    def record(self, sent_at: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.latencies.append(now - sent_at)
        self.first = self.first or now
        self.last = now

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        span = max(self.last - (self.first or self.last), 1e-9)
        return {
            "deliveries": len(lat),
            "per_s": len(lat) / span,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
            "p99_ms": 1000 * lat[int(len(lat) * 0.99)] if lat else float("nan"),
            "mean_ms": 1000 * statistics.fmean(lat) if lat else float("nan"),
        }


def published_at(msg: dict[str, Any]) -> float | None:
    return float(msg["sent_at"])


async def client(
    url: str,
    on_pool: Callable[[dict[str, Any]], None],
    ready: asyncio.Event,
    hello: list[str],
    done: Any,
    origin: str | None,
    failed: Callable[[], None],
) -> None:
    try:
        async with connect(url, max_queue=None, open_timeout=120, origin=origin) as ws:  # type: ignore[arg-type]
            for text in hello:
                await ws.send(text)
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg.get("type")
                if kind in ("snapshot", "welcome"):
                    ready.set()
                elif kind == "pool":
                    on_pool(msg)
                if done.is_set():
                    return
    except (OSError, TimeoutError, ConnectionClosed):
        pass
    finally:
        if not ready.is_set():  # never subscribed: counted, and nobody waits for it
            failed()
            ready.set()


async def connect_all(
    urls: list[str],
    n: int,
    hello: list[str],
    on_pool: Callable[[dict[str, Any]], None],
    done: asyncio.Event,
    origin: str | None,
    failed: Callable[[], None],
) -> list[asyncio.Task[None]]:
    """``n`` subscribers, split between ``urls``, each past its snapshot (or given up)."""
    readies = [asyncio.Event() for _ in range(n)]
    tasks = []
    for i in range(n):
        url = urls[i % len(urls)]  # several replicas: clients split between them
        tasks.append(
            asyncio.create_task(client(url, on_pool, readies[i], hello, done, origin, failed))
        )
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60 + n / 20)
    return tasks


def collect_as_served() -> None:
    """This process's collector as ``canaliza serve`` sets it: its thresholds, and what
    importing built frozen (``services.app.freeze_startup_heap``)."""
    tune_collector()
    freeze_heap()


CLIENTS_APART = True
"""Subscribers in a process of their own (``--same-process`` puts them back beside the
server): with both in one process they share its GIL, and at 500 or 5,000 subscribers the
clients cost as much as the server, so the latencies measured the process's queue."""

Received = tuple[Any, Any, Any, float]
"""What a subscriber process sends back per delivery: ``sent_at``, ``pool_id``,
``version`` of the message, and when it arrived (wall clock, shared by processes)."""


def subscriber_main(
    urls: list[str], n: int, hello: list[str], origin: str | None, conn: Any
) -> None:
    """The subscribers of one run, in their own process: connect, say how many failed,
    collect every delivery until told how many to expect, send them back with this
    process's CPU seconds over the run. The instrument's own collections would delay
    what it records: it runs with a server's collector settings whatever ``--collector``."""
    raise_fd_limit(n)
    collect_as_served()

    async def main() -> None:
        received: list[Received] = []
        failures = [0]
        done = asyncio.Event()

        def on_pool(msg: dict[str, Any]) -> None:
            received.append(
                (msg.get("sent_at"), msg.get("pool_id"), msg.get("version"), time.time())
            )

        def failed() -> None:
            failures[0] += 1

        tasks = await connect_all(urls, n, hello, on_pool, done, origin, failed)
        conn.send(("ready", failures[0]))
        cpu0 = time.process_time()
        expected = await asyncio.to_thread(conn.recv)
        for _ in range(200):  # let the tail arrive (at most 10 s)
            if len(received) >= expected:
                break
            await asyncio.sleep(0.05)
        cpu = time.process_time() - cpu0
        done.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send(("done", received, cpu))

    asyncio.run(main())


async def run_clients(
    urls: list[str],
    n: int,
    hello: list[str],
    publish: Any,
    rate: float,
    seconds: float,
    origin: str | None = None,
    sent_at: Callable[[dict[str, Any]], float | None] = published_at,
) -> dict[str, float]:
    if CLIENTS_APART:
        return await _run_clients_apart(urls, n, hello, publish, rate, seconds, origin, sent_at)
    stats = Stats()
    done = asyncio.Event()

    def on_pool(msg: dict[str, Any]) -> None:
        if (at := sent_at(msg)) is not None:
            stats.record(at)

    def failed() -> None:
        stats.failed += 1

    tasks = await connect_all(urls, n, hello, on_pool, done, origin, failed)
    cpu = CpuSplit()
    start = time.monotonic()
    sent = await _publish_for(publish, rate, seconds)
    expected = sent * (n - stats.failed)
    for _ in range(200):  # let the tail arrive (at most 10 s)
        if len(stats.latencies) >= expected:
            break
        await asyncio.sleep(0.05)
    client_cpu, server_cpu = cpu.split()
    window = time.monotonic() - start  # first publication → every delivery in (or given up)
    done.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return _result(stats, expected, client_cpu, server_cpu, window)


async def _publish_for(publish: Any, rate: float, seconds: float) -> int:
    """Publish at ``rate`` for ``seconds``; how many events went out."""
    interval = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        await publish(sent)
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
    return sent


def _result(
    stats: Stats, expected: int, client_cpu: float, server_cpu: float, window: float
) -> dict[str, float]:
    result = stats.summary()
    result["expected"] = expected
    result["failed"] = stats.failed
    deliveries = max(len(stats.latencies), 1)
    result["client_us"] = 1e6 * client_cpu / deliveries
    result["server_us"] = 1e6 * server_cpu / deliveries
    result["busy"] = (client_cpu + server_cpu) / window
    return result


async def _run_clients_apart(
    urls: list[str],
    n: int,
    hello: list[str],
    publish: Any,
    rate: float,
    seconds: float,
    origin: str | None,
    sent_at: Callable[[dict[str, Any]], float | None],
) -> dict[str, float]:
    """As :func:`run_clients`, the subscribers in a process of their own; this process's
    CPU (the server and the publisher) is the server's."""
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    proc = context.Process(
        target=subscriber_main, args=(urls, n, hello, origin, there), daemon=True
    )
    proc.start()
    try:
        kind, failed = await asyncio.to_thread(here.recv)
        assert kind == "ready", kind
        stats = Stats()
        stats.failed = failed
        cpu0 = time.process_time()
        start = time.monotonic()
        sent = await _publish_for(publish, rate, seconds)
        expected = sent * (n - failed)
        here.send(expected)
        kind, received, client_cpu = await asyncio.to_thread(here.recv)
        assert kind == "done", kind
        server_cpu = time.process_time() - cpu0
        window = time.monotonic() - start
        for sent_at_field, pool_id, version, arrived in received:
            message = {"sent_at": sent_at_field, "pool_id": pool_id, "version": version}
            if (at := sent_at(message)) is not None:
                stats.record(at, arrived)
        return _result(stats, expected, client_cpu, server_cpu, window)
    finally:
        await asyncio.to_thread(proc.join, 30)
        if proc.is_alive():
            proc.terminate()


class CpuSplit:
    """CPU seconds of this process from now on: the clients' (this thread: the subscribers'
    event loop and the publisher) and the server's (every other thread of the process:
    uvicorn's loop, its thread pool). A server in other processes (``replicas``) is not in
    it. One GIL for both: ``busy`` near 1.0 means the process is saturated and the
    latencies are its queue, whichever side costs more."""

    def __init__(self) -> None:
        self.process = time.process_time()
        self.thread = time.thread_time()

    def split(self) -> tuple[float, float]:
        client = time.thread_time() - self.thread
        return client, time.process_time() - self.process - client


# Replicas being stopped at the end of a run say so; not worth a line in the figures.
QUIET_LOGGERS = ("canaliza.bus.nats",)


def raise_fd_limit(clients: int) -> None:
    """Each subscriber costs two descriptors here (client and server side in one process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * clients + 1024))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Keys:
    """The signing key of the bench's tokens (passed to replica processes as a JWK)."""

    def __init__(self, jwk: dict[str, Any] | None = None) -> None:
        self.key = (
            ECKey.import_key(jwk)
            if jwk is not None
            else ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256"})
        )

    def jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=True))

    def configure(self) -> None:
        settings = get_settings()
        security.configure_verifier(
            TokenVerifier(
                issuer=settings.token_issuer(),
                audience=settings.audience,
                keys=StaticKeySource(KeySet([self.key])),
            )
        )

    def token(self, role: str = "prosecutor", institution_id: str | None = None) -> str:
        settings = get_settings()
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": settings.token_issuer(),
            "aud": settings.audience,
            "sub": f"bench-{role}",
            "exp": now + 3600,
            "iat": now,
            "roles": [role],
        }
        if institution_id is not None:
            claims["institution_id"] = institution_id
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "bench"}, claims, self.key)


def pool_event(i: int) -> Event:
    row = pool(i % 20, i + 2, time.time())
    return Event(
        type="capacity.pool.changed",
        aggregate_type="pool",
        aggregate_id=row["pool_id"],
        aggregate_version=row["version"],
        payload=row,
    )


def feed_app(bus: Bus, *, proxy: bool = False) -> Any:
    set_snapshot_provider(lambda filters: [pool(i, 1, 0.0) for i in range(20)])

    async def remember(runtime: Any) -> None:
        runtime.state["loop"] = asyncio.get_running_loop()

    spec = ServiceSpec(
        name="capacity",
        public_routers=[live_router],
        on_startup=[start_live],
        on_shutdown=[stop_live],
    )
    specs = [spec]
    if proxy:
        from frontend.live import router as proxy_router

        specs.append(ServiceSpec(name="frontend", public_routers=[proxy_router]))
    app = create_app(specs, bus=bus, extra_startup=[remember])
    # Thousands of handshakes at once on a loaded machine: the auth message may wait.
    app.state.runtime.state[OPTIONS_KEY] = LiveOptions(
        queue_size=10_000, heartbeat_seconds=60, auth_timeout_seconds=120
    )
    return app


def uvicorn_server(app: Any, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", backlog=4096)
    )


@contextlib.asynccontextmanager
async def feed_in_thread(app: Any) -> AsyncIterator[int]:
    port = free_port()
    server = uvicorn_server(app, port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag only
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 20)


def hello(token: str) -> list[str]:
    return [
        json.dumps({"type": "auth", "token": token}),
        json.dumps({"type": "subscribe", "filters": {"state": "09"}}),
    ]


async def bench_feed(n: int, rate: float, seconds: float) -> dict[str, float]:
    keys = Keys()
    keys.configure()
    bus = InProcessBus()
    app = feed_app(bus)
    async with feed_in_thread(app) as port:
        loop = app.state.runtime.state["loop"]

        async def publish(i: int) -> None:
            fut = asyncio.run_coroutine_threadsafe(bus.publish(pool_event(i)), loop)
            await asyncio.wrap_future(fut)

        url = f"ws://127.0.0.1:{port}/api/v1/capacity/live"
        result = await run_clients([url], n, hello(keys.token()), publish, rate, seconds)
        hub = app.state.runtime.state.get(HUB_KEY)
        result["connections_at_end"] = len(hub.connections) if hub else 0
        result["filter_classes"] = len(getattr(hub, "classes", ()))
    return result


async def bench_proxy(n: int, rate: float, seconds: float) -> dict[str, float]:
    """Browsers on the web UI's ``/live``; the proxy relays to capacity in process."""
    import frontend.live as proxy

    keys = Keys()
    keys.configure()
    token = keys.token()

    class SignedIn:  # the browser session: what ``/live`` reads of it
        signed_in = True

        @staticmethod
        def tokens() -> dict[str, Any]:
            return {"expires_at": time.time() + 3600}

    class TokenPage:  # the page's token handling: the user's access token
        def __init__(self, **kw: Any) -> None:
            self.browser = kw["browser"]

        async def access_token(self) -> str:
            return token

    saved = proxy._load, vars(proxy)["Page"]
    setattr(proxy, "_load", lambda raw: SignedIn())  # noqa: B010 - no cookie to sign here
    setattr(proxy, "Page", TokenPage)  # noqa: B010
    bus = InProcessBus()
    app = feed_app(bus, proxy=True)
    try:
        async with feed_in_thread(app) as port:
            app.state.runtime.app = app
            loop = app.state.runtime.state["loop"]

            async def publish(i: int) -> None:
                fut = asyncio.run_coroutine_threadsafe(bus.publish(pool_event(i)), loop)
                await asyncio.wrap_future(fut)

            subscribe = [json.dumps({"type": "subscribe", "filters": {"state": "09"}})]
            return await run_clients(
                [f"ws://127.0.0.1:{port}/live"],
                n,
                subscribe,
                publish,
                rate,
                seconds,
                origin=f"http://127.0.0.1:{port}",
            )
    finally:
        setattr(proxy, "_load", saved[0])  # noqa: B010
        setattr(proxy, "Page", saved[1])  # noqa: B010


async def bench_ledger(n: int, rate: float, seconds: float) -> dict[str, float]:
    """Ledger write → client receives: the capacity service (SQLite, its outbox relay woken
    by the commit) takes ``POST /pools/{id}/ledger``; the latency runs from the request."""
    import tempfile

    import httpx
    from alembic import command

    from canaliza.demo import CASA_MERCEDES, FGR, PLATFORM
    from capacity.database import db
    from capacity.main import service
    from services.db import alembic_config

    keys = Keys()
    keys.configure()
    admin = {"Authorization": "Bearer " + keys.token("platform_admin", PLATFORM.id)}
    staff = {"Authorization": "Bearer " + keys.token("shelter_coordinator", CASA_MERCEDES.id)}
    written: dict[int, float] = {}  # pool version → when its ledger entry was requested
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/capacity.db"
        command.upgrade(alembic_config("capacity", url, db.metadata), "head")
        db.configure(url)
        get_settings().auto_migrate = False
        app = create_app([service()], bus=InProcessBus())
        try:
            async with (
                feed_in_thread(app) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
            ):
                facility = (
                    await http.post(
                        "/api/v1/facilities",
                        json={
                            "name": "Refugio Banco",
                            "kind": "refugio",
                            "operator_institution_id": CASA_MERCEDES.id,
                            "state": "09",
                            "municipality": "Cuauhtémoc",
                            "address": "Calle 1",
                        },
                        headers=admin,
                    )
                ).json()
                await http.patch(
                    f"/api/v1/facilities/{facility['id']}",
                    json={"status": "active", "reason": "visita"},
                    headers=admin,
                )
                created = await http.post(
                    f"/api/v1/facilities/{facility['id']}/pools",
                    json={"name": "Mujeres", "sexes": ["F"], "min_age": 18, "max_age": 120,
                          "total": 4, "accepts_children": False,
                          "wheelchair_accessible": False},
                    headers=admin,
                )  # fmt: skip
                pool_row = created.json()
                state = {"version": int(pool_row["version"])}

                async def write(i: int) -> None:
                    written[state["version"] + 1] = time.time()
                    r = await http.post(
                        f"/api/v1/pools/{pool_row['id']}/ledger",
                        json={"kind": "discharge" if i % 2 else "admit", "beds": 1,
                              "reason": "banco"},
                        headers=staff,
                    )  # fmt: skip
                    r.raise_for_status()
                    state["version"] = int(r.json()["pool"]["version"])

                def requested_at(msg: dict[str, Any]) -> float | None:
                    return (
                        written.get(int(msg["version"]))
                        if msg["pool_id"] == pool_row["id"]
                        else None
                    )

                live = f"ws://127.0.0.1:{port}/api/v1/capacity/live"
                return await run_clients(
                    [live], n, hello(keys.token("prosecutor", FGR.id)), write, rate, seconds,
                    sent_at=requested_at,
                )  # fmt: skip
        finally:
            db.dispose()


def replica_main(port: int, jwk: dict[str, Any], nats_url: str, stream: str, prefix: str) -> None:
    """One capacity server process of the two-replica shape (its own NATS consumer)."""
    from services.bus_nats import NatsBus

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    Keys(jwk).configure()
    bus = NatsBus(url=nats_url, stream=stream, subject_prefix=prefix)
    uvicorn_server(feed_app(bus), port).run()


async def bench_replicas(n: int, rate: float, seconds: float, nats_url: str) -> dict[str, float]:
    """Two capacity processes sharing a NATS JetStream stream; clients split between them."""
    from nats.errors import TimeoutError as NatsTimeout

    from services.bus_nats import NatsBus

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    keys = Keys()
    keys.configure()
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"BENCH_LIVE_{tag.upper()}", f"b{tag}"
    publisher = NatsBus(url=nats_url, stream=stream, subject_prefix=prefix)
    await publisher.start()
    context = multiprocessing.get_context("spawn")
    ports = [free_port(), free_port()]
    replicas = [
        context.Process(
            target=replica_main, args=(port, keys.jwk(), nats_url, stream, prefix), daemon=True
        )
        for port in ports
    ]
    try:
        for replica in replicas:
            replica.start()
        for port in ports:
            await wait_listening(port)

        async def publish(i: int) -> None:
            # With thousands of clients in this process the ack may come late; the event
            # is stored all the same, and the clients time it.
            with contextlib.suppress(NatsTimeout):
                await publisher.publish(pool_event(i))

        urls = [f"ws://127.0.0.1:{port}/api/v1/capacity/live" for port in ports]
        return await run_clients(urls, n, hello(keys.token()), publish, rate, seconds)
    finally:
        for replica in replicas:
            replica.terminate()
        for replica in replicas:
            await asyncio.to_thread(replica.join, 20)
        with contextlib.suppress(Exception):
            await publisher._jetstream().delete_stream(stream)
        await publisher.close()


async def wait_listening(port: int) -> None:
    for _ in range(600):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"replica on {port} did not start")


async def bench_bare(n: int, rate: float, seconds: float) -> dict[str, float]:
    clients: set[Any] = set()
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}
    started = threading.Event()
    stop = threading.Event()
    port = free_port()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.send('{"type":"welcome"}')
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        async with serve(handler, "127.0.0.1", port, backlog=4096):
            started.set()
            while not stop.is_set():  # noqa: ASYNC110 - a thread sets it
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    await asyncio.to_thread(started.wait, 10)

    async def send_all(text: str) -> None:
        broadcast(clients, text)

    async def publish(i: int) -> None:
        # The same JSON the feed sends, built once, broadcast to every client.
        text = orjson.dumps({**pool(i % 20, i + 2, time.time()), "type": "pool", "sequence": i + 1})
        fut = asyncio.run_coroutine_threadsafe(send_all(text.decode()), loop_box["loop"])
        await asyncio.wrap_future(fut)

    try:
        return await run_clients([f"ws://127.0.0.1:{port}"], n, [], publish, rate, seconds)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 20)


def show(name: str, n: int, r: dict[str, float], floor: dict[str, float]) -> None:
    failed = f" ({int(r['failed'])} never subscribed)" if r.get("failed") else ""
    print(
        f"{n:>6} {name:>9}: {int(r['deliveries']):>7}/{int(r['expected'])} deliveries{failed}, "
        f"p50 {r['p50_ms']:7.1f} ms, p99 {r['p99_ms']:7.1f} ms  "
        f"(floor ×{r['p50_ms'] / floor['p50_ms']:.2f} p50, ×{r['p99_ms'] / floor['p99_ms']:.2f} p99); "
        f"CPU per delivery: clients {r['client_us']:.0f} µs, server {r['server_us']:.0f} µs"
        f"{' (in other processes: not counted)' if name == 'replicas' else ''}, "
        f"{r['busy']:.2f} cores busy",
        flush=True,
    )


async def amain(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.clients.split(",")]
    shapes = args.shapes.split(",")
    raise_fd_limit(max(counts))
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; shapes {shapes}; "
        f"subscribers {'in a process of their own' if CLIENTS_APART else 'in this process'}; "
        f"collector thresholds {gc.get_threshold()}"
    )
    for n in counts:
        rate = min(args.rate, args.budget / n)
        print(f"-- {n} subscribers, {rate:g} events/s for {args.seconds:g} s", flush=True)
        floor = await bench_bare(n, rate, args.seconds)
        show("bare", n, floor, floor)
        for shape in shapes:
            if shape == "feed":
                result = await bench_feed(n, rate, args.seconds)
            elif shape == "proxy":
                result = await bench_proxy(n, rate, args.seconds)
            elif shape == "ledger":
                result = await bench_ledger(n, rate, args.seconds)
            elif shape == "replicas":
                result = await bench_replicas(n, rate, args.seconds, args.nats_url)
            else:
                raise SystemExit(f"unknown shape {shape!r}")
            show(shape, n, result, floor)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="500", help="subscriber counts, e.g. 1,500,5000")
    parser.add_argument(
        "--shapes", default="feed", help="feed, ledger, replicas, proxy (comma-separated)"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="events per second, at most")
    parser.add_argument(
        "--budget", type=float, default=10_000, help="deliveries per second, at most"
    )
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="the subscribers beside the server, in this process (as before round 8)",
    )
    parser.add_argument(
        "--collector",
        default="served",
        choices=("served", "default"),
        help="the cyclic collector as `canaliza serve` sets it (thresholds, start-up heap "
        "frozen) or CPython's defaults",
    )
    args = parser.parse_args()
    if args.collector == "served":
        collect_as_served()  # the bare side shares this process, and so these settings
    global CLIENTS_APART
    CLIENTS_APART = not args.same_process
    args.seconds = min(args.seconds, 15.0)  # keep each side well under a minute
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(args))


if __name__ == "__main__":
    main()
