"""Benchmark: the live capacity feed against a bare ``websockets`` broadcast server.

Same process, same client harness, same messages, same number of clients, one after the
other. Our side: a real uvicorn server with the feed (auth, filters, per-connection
queues) fed by events published on the in-process bus. Bare side: ``websockets.broadcast``
of the same JSON. Each message carries the time it was published; clients record the
delivery latency. Bounded: a few seconds per side (``--seconds``), well under 60 s.

    .venv/bin/python -m bench.live_feed --clients 500 --rate 20 --seconds 6   # from the repo root
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import threading
import time
from typing import Any

import orjson
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast, serve

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
from services.app import ServiceSpec, create_app
from services.bus import InProcessBus
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
        self.first: float | None = None
        self.last = 0.0

    def record(self, sent_at: float) -> None:
        now = time.time()
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


async def client(url: str, stats: Stats, ready: asyncio.Event, hello: list[str], done: Any) -> None:
    async with connect(url, max_queue=None, open_timeout=60) as ws:
        for text in hello:
            await ws.send(text)
        async for raw in ws:
            msg = orjson.loads(raw)
            kind = msg.get("type")
            if kind in ("snapshot", "welcome"):
                ready.set()
            elif kind == "pool":
                stats.record(msg["sent_at"])
            if done.is_set():
                return


async def run_clients(
    url: str, n: int, hello: list[str], publish: Any, rate: float, seconds: float
) -> dict[str, float]:
    stats = Stats()
    done = asyncio.Event()
    readies = [asyncio.Event() for _ in range(n)]
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(url, stats, readies[i], hello, done)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    interval = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        await publish(sent)
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
    expected = sent * n
    for _ in range(200):  # let the tail arrive (at most 10 s)
        if len(stats.latencies) >= expected:
            break
        await asyncio.sleep(0.05)
    done.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result = stats.summary()
    result["expected"] = expected
    return result


async def bench_feed(n: int, rate: float, seconds: float) -> dict[str, float]:
    settings = get_settings()
    key = ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256"})
    security.configure_verifier(
        TokenVerifier(
            issuer=settings.token_issuer(),
            audience=settings.audience,
            keys=StaticKeySource(KeySet([key])),
        )
    )
    now = int(time.time())
    token = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": "bench"},
        {
            "iss": settings.token_issuer(),
            "aud": settings.audience,
            "sub": "bench",
            "exp": now + 3600,
            "iat": now,
            "roles": ["prosecutor"],
        },
        key,
    )
    set_snapshot_provider(lambda filters: [pool(i, 1, 0.0) for i in range(20)])
    bus = InProcessBus()
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}

    async def remember(runtime: Any) -> None:
        loop_box["loop"] = asyncio.get_running_loop()

    spec = ServiceSpec(
        name="capacity",
        public_routers=[live_router],
        on_startup=[start_live],
        on_shutdown=[stop_live],
    )
    app = create_app([spec], bus=bus, extra_startup=[remember])
    app.state.runtime.state[OPTIONS_KEY] = LiveOptions(queue_size=10_000, heartbeat_seconds=60)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", backlog=2048)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag only
        await asyncio.sleep(0.02)

    async def publish(i: int) -> None:
        row = pool(i % 20, i + 2, time.time())
        ev = Event(
            type="capacity.pool.changed",
            aggregate_type="pool",
            aggregate_id=row["pool_id"],
            aggregate_version=row["version"],
            payload=row,
        )
        fut = asyncio.run_coroutine_threadsafe(bus.publish(ev), loop_box["loop"])
        await asyncio.wrap_future(fut)

    hello = [
        json.dumps({"type": "auth", "token": token}),
        json.dumps({"type": "subscribe", "filters": {"state": "09"}}),
    ]
    try:
        result = await run_clients(
            f"ws://127.0.0.1:{port}/api/v1/capacity/live", n, hello, publish, rate, seconds
        )
        hub = app.state.runtime.state.get(HUB_KEY)
        result["connections_at_end"] = len(hub.connections) if hub else 0
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 20)
    return result


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
        async with serve(handler, "127.0.0.1", port, backlog=2048):
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
        return await run_clients(f"ws://127.0.0.1:{port}", n, [], publish, rate, seconds)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 20)


def show(name: str, r: dict[str, float]) -> None:
    print(
        f"{name:>14}: {int(r['deliveries']):>7}/{int(r['expected'])} deliveries, "
        f"{r['per_s']:>9.0f}/s, p50 {r['p50_ms']:7.1f} ms, p99 {r['p99_ms']:7.1f} ms"
    )


async def amain(args: argparse.Namespace) -> None:
    print(
        f"{args.clients} clients, {args.rate} events/s for {args.seconds} s "
        f"({int(args.rate * args.seconds)} events each side)"
    )
    feed = await bench_feed(args.clients, args.rate, args.seconds)
    show("canaliza feed", feed)
    bare = await bench_bare(args.clients, args.rate, args.seconds)
    show("bare broadcast", bare)
    print(
        f"ratio feed/bare: throughput {feed['per_s'] / bare['per_s']:.2f}x, "
        f"p50 {feed['p50_ms'] / bare['p50_ms']:.2f}x, p99 {feed['p99_ms'] / bare['p99_ms']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    args.seconds = min(args.seconds, 15.0)  # keep the whole run well under a minute
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(args))


if __name__ == "__main__":
    main()
