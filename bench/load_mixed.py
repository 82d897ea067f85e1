"""Load: a mixed workload of 200 simulated users, against the embedded default and the topology.

Each simulated user has one persona (by its index): searcher (40 %), holder — hold one
bed, release it (20 %), coordinator writing ledger entries — admit, discharge (20 %),
referral — hold, create, send, decline (10 %), live subscriber on the WebSocket feed
(10 %). Every user loops until the time is up (``--seconds``) or it has done
``--iterations`` rounds. Any unexpected answer, transport error or live-feed anomaly (a
repeated or older version of a pool) is an error; errors must be 0.

Targets, one after the other, each on its own throwaway data:

- ``embedded``: ``canaliza serve all`` (uvicorn, SQLite, in-process bus) in a subprocess;
- ``topology``: ``canaliza cluster up`` (auth, capacity ×2, referral, audit, gateway) on
  the machine's PostgreSQL and NATS, with a database and stream of its own, removed after.

Baseline (same run, same users, same client): every user calling the authenticated
no-op ``GET /api/v1/capacity/ping``; the mixed throughput is printed as a ratio of it.

    .venv/bin/python -m bench.load_mixed --seconds 30            # both targets
    .venv/bin/python -m bench.load_mixed --targets embedded --seconds 10

Figures are printed and written to ``var/resilience/load.json`` for the resilience summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from canaliza.cluster import Cluster, free_port, unique_name
from canaliza.demo import CASA_MERCEDES, FGR
from services.settings import ROOT

RESULTS_DIR = Path(os.environ.get("CANALIZA_RESILIENCE_DIR", ROOT / "var" / "resilience"))
DEMO_PASSWORD = "canaliza-demo"
PG_ADMIN_URL = os.environ.get(
    "CANALIZA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("CANALIZA_TEST_NATS", "nats://127.0.0.1:4222")
# Hundreds of simulated prosecutors of one demo institution hold beds at once: a load test
# raises the per-institution hold quota (CANALIZA_HOLD_QUOTA_BEDS), as a rescue operation would.
LOAD_SETTINGS = {"CANALIZA_HOLD_QUOTA_BEDS": "1000000", "CANALIZA_HOLD_ALERT_SHARE": "1.0"}

PERSONAS = (
    "search",
    "search",
    "search",
    "search",
    "hold",
    "hold",
    "ledger",
    "ledger",
    "referral",
    "live",
)
PEOPLE = [{"sex": "F", "age": 30, "role": "victim"}]
FACILITIES = 4
POOLS_PER_FACILITY = 2
POOL_TOTAL = 10_000


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies per operation, errors with a few samples, live-feed counters."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    live_messages: int = 0

    def ok(self, op: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append(seconds * 1000)

    def error(self, op: str, what: str) -> None:
        self.errors += 1
        if len(self.samples) < 10:
            self.samples.append(f"{op}: {what[:300]}")

    def summary(self, elapsed: float) -> dict[str, Any]:
        per_op = {}
        for op, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            per_op[op] = {
                "count": len(ordered),
                "p50_ms": round(_pct(ordered, 0.50), 2),
                "p95_ms": round(_pct(ordered, 0.95), 2),
                "p99_ms": round(_pct(ordered, 0.99), 2),
                "rps": round(len(ordered) / elapsed, 1),
            }
        return per_op


def _pct(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(
    stats: Stats, op: str, call: Awaitable[httpx.Response], expect: int
) -> httpx.Response | None:
    """Await one request; record its latency, or an error if the status is not ``expect``."""
    t0 = time.perf_counter()
    try:
        r = await call
    except httpx.HTTPError as exc:
        stats.error(op, f"{type(exc).__name__}: {exc}")
        return None
    if r.status_code != expect:
        stats.error(op, f"{r.status_code} {r.text}")
        return None
    stats.ok(op, time.perf_counter() - t0)
    return r


# --- the target's data ----------------------------------------------------------------------


@dataclass
class World:
    """Tokens and ids the simulated users work with."""

    base_url: str
    tokens: dict[str, str]
    facility_ids: list[str]
    pool_ids: list[str]

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/api/v1/capacity/live"


async def login(http: httpx.AsyncClient, username: str) -> str:
    r = await http.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": DEMO_PASSWORD,
            "client_id": "canaliza-cli",
        },
    )
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


async def prepare(base_url: str) -> World:
    """Demo users' tokens, the two institutions and their agreement, facilities and pools."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        tokens = {u: await login(http, u) for u in ("admin", "fiscal", "coordinadora")}
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        for inst in (FGR, CASA_MERCEDES):
            r = await http.post(
                "/api/v1/institutions",
                json={"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state},
                headers=admin,
            )
            if r.status_code not in (201, 409):
                raise RuntimeError(f"institution {inst.key}: {r.status_code} {r.text}")
        today = date.today()
        r = await http.post(
            "/api/v1/agreements",
            json={
                "number": f"CARGA-{uuid.uuid4().hex[:8]}",
                "title": "Convenio de la prueba de carga",
                "party_ids": [FGR.id, CASA_MERCEDES.id],
                "valid_from": today.replace(year=today.year - 1).isoformat(),
                "valid_to": today.replace(year=today.year + 1).isoformat(),
            },
            headers=admin,
        )
        r.raise_for_status()
        agreement = r.json()["id"]
        for inst in (FGR, CASA_MERCEDES):
            r = await http.post(
                f"/api/v1/agreements/{agreement}/sign",
                json={"institution_id": inst.id},
                headers=admin,
            )
            r.raise_for_status()
        facility_ids, pool_ids = [], []
        for i in range(FACILITIES):
            r = await http.post(
                "/api/v1/facilities",
                json={
                    "name": f"Refugio Carga {i + 1}",
                    "kind": "refugio",
                    "operator_institution_id": CASA_MERCEDES.id,
                    "state": "09",
                    "municipality": "Cuauhtémoc",
                    "address": f"Calle Carga {i + 1}, Col. Centro",
                },
                headers=admin,
            )
            r.raise_for_status()
            fid = r.json()["id"]
            r = await http.patch(
                f"/api/v1/facilities/{fid}",
                json={"status": "active", "reason": "visita de verificación"},
                headers=admin,
            )
            r.raise_for_status()
            facility_ids.append(fid)
            for j in range(POOLS_PER_FACILITY):
                r = await http.post(
                    f"/api/v1/facilities/{fid}/pools",
                    json={
                        "name": f"Mujeres adultas {j + 1}",
                        "sexes": ["F"],
                        "min_age": 18,
                        "max_age": 120,
                        "total": POOL_TOTAL,
                        "accepts_children": False,
                        "max_child_age": 0,
                        "max_children": 0,
                        "wheelchair_accessible": False,
                    },
                    headers=admin,
                )
                r.raise_for_status()
                pool_ids.append(r.json()["id"])
    return World(base_url, tokens, facility_ids, pool_ids)


# --- personas -------------------------------------------------------------------------------


async def search(http: httpx.AsyncClient, w: World, s: Stats, rnd: random.Random) -> None:
    await timed(
        s,
        "search",
        http.post(
            "/api/v1/availability/search",
            json={"people": PEOPLE, "state": "09"},
            headers=w.headers("fiscal"),
        ),
        200,
    )


async def hold_release(http: httpx.AsyncClient, w: World, s: Stats, rnd: random.Random) -> None:
    pool_id = rnd.choice(w.pool_ids)
    r = await timed(
        s,
        "hold",
        http.post(
            "/api/v1/holds",
            json={"allocations": [{"pool_id": pool_id, "beds": 1}]},
            headers=w.headers("fiscal"),
        ),
        201,
    )
    if r is not None:
        await timed(
            s,
            "release",
            http.delete(f"/api/v1/holds/{r.json()['id']}", headers=w.headers("fiscal")),
            200,
        )


async def ledger(http: httpx.AsyncClient, w: World, s: Stats, rnd: random.Random) -> None:
    pool_id = rnd.choice(w.pool_ids)
    for kind in ("admit", "discharge"):
        r = await timed(
            s,
            "ledger",
            http.post(
                f"/api/v1/pools/{pool_id}/ledger",
                json={"kind": kind, "beds": 1, "reason": "prueba de carga"},
                headers=w.headers("coordinadora"),
            ),
            201,
        )
        if r is None:
            return


async def referral(http: httpx.AsyncClient, w: World, s: Stats, rnd: random.Random) -> None:
    i = rnd.randrange(len(w.pool_ids))
    pool_id, facility_id = w.pool_ids[i], w.facility_ids[i // POOLS_PER_FACILITY]
    fiscal, coord = w.headers("fiscal"), w.headers("coordinadora")
    hold = await timed(
        s,
        "hold",
        http.post(
            "/api/v1/holds", json={"allocations": [{"pool_id": pool_id, "beds": 1}]}, headers=fiscal
        ),
        201,
    )
    if hold is None:
        return
    created = await timed(
        s,
        "referral_create",
        http.post(
            "/api/v1/referrals",
            json={
                "sending_institution_id": FGR.id,
                "receiving_institution_id": CASA_MERCEDES.id,
                "facility_id": facility_id,
                "hold_id": hold.json()["id"],
                "people": [{**PEOPLE[0], "nationality": "MEX"}],
                "consent": {"given": True},
                "urgency": "normal",
            },
            headers=fiscal,
        ),
        201,
    )
    if created is None:
        return
    rid = created.json()["id"]
    for action, who in (("send", fiscal), ("decline", coord)):
        body = {"reason": "sin cupo para el perfil"} if action == "decline" else {}
        r = await timed(
            s,
            "referral_transition",
            http.post(f"/api/v1/referrals/{rid}/{action}", json=body, headers=who),
            200,
        )
        if r is None:
            return


async def live(w: World, s: Stats, stop: asyncio.Event, seen: dict[str, int]) -> None:
    """Subscribe to the live feed until ``stop``; versions per pool must only increase.

    ``seen`` is filled with the newest version shown of each pool (snapshot, then changes).
    """
    t0 = time.perf_counter()
    try:
        async with connect(w.ws_url, open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "auth", "token": w.tokens["fiscal"]}))
            await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "09"}}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if msg["type"] == "snapshot":
                    seen.update({p["pool_id"]: p["version"] for p in msg["pools"]})
                    s.ok("live_snapshot", time.perf_counter() - t0)
                    break
                if msg["type"] == "error":
                    s.error("live_snapshot", json.dumps(msg))
                    return
            receiver = asyncio.ensure_future(ws.recv())
            stopper = asyncio.ensure_future(stop.wait())
            while True:
                done, _ = await asyncio.wait(
                    {receiver, stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiver not in done:
                    receiver.cancel()
                    with contextlib.suppress(BaseException):
                        await receiver
                    return
                msg = json.loads(receiver.result())
                if msg["type"] == "pool":
                    s.live_messages += 1
                    if msg["version"] <= seen.get(msg["pool_id"], 0):
                        s.error("live_event", f"version {msg['version']} again or out of order")
                    seen[msg["pool_id"]] = msg["version"]
                elif msg["type"] == "error":
                    s.error("live_event", json.dumps(msg))
                receiver = asyncio.ensure_future(ws.recv())
    except Exception as exc:
        s.error("live", f"{type(exc).__name__}: {exc}")


Action = Callable[[httpx.AsyncClient, World, Stats, random.Random], Awaitable[None]]
ACTIONS: dict[str, Action] = {
    "search": search,
    "hold": hold_release,
    "ledger": ledger,
    "referral": referral,
}


async def ping(http: httpx.AsyncClient, w: World, s: Stats, rnd: random.Random) -> None:
    await timed(s, "ping", http.get("/api/v1/capacity/ping", headers=w.headers("fiscal")), 200)


async def drive(
    world: World,
    *,
    users: int,
    seconds: float | None,
    iterations: int | None,
    baseline: bool = False,
) -> tuple[Stats, float]:
    """Run the simulated users; returns their stats and the elapsed seconds."""
    stats = Stats()
    stop = asyncio.Event()
    deadline = time.monotonic() + seconds if seconds else None
    # Idle connections are dropped long before the server would close them (the launcher's
    # KEEP_ALIVE_SECONDS), so a request never races a closing keep-alive connection.
    limits = httpx.Limits(
        max_connections=users, max_keepalive_connections=users, keepalive_expiry=1.0
    )

    async with httpx.AsyncClient(base_url=world.base_url, timeout=120, limits=limits) as http:

        async def user(i: int) -> None:
            rnd = random.Random(i)
            act = ping if baseline else ACTIONS[PERSONAS[i % len(PERSONAS)]]
            n = 0
            while (iterations is None or n < iterations) and (
                deadline is None or time.monotonic() < deadline
            ):
                await act(http, world, stats, rnd)
                n += 1

        personas = [PERSONAS[i % len(PERSONAS)] for i in range(users)]
        subscribers = [] if baseline else [i for i, p in enumerate(personas) if p == "live"]
        workers = [i for i in range(users) if i not in subscribers]
        views: list[dict[str, int]] = [{} for _ in subscribers]
        listeners = [asyncio.create_task(live(world, stats, stop, view)) for view in views]
        for _ in range(600):  # let the subscribers get their snapshot first (bounded)
            if len(stats.latencies.get("live_snapshot", [])) + stats.errors >= len(listeners):
                break
            await asyncio.sleep(0.1)
        t0 = time.perf_counter()
        await asyncio.gather(*(user(i) for i in workers))
        elapsed = time.perf_counter() - t0
        # Every subscriber must end up showing each pool's final version (no change lost).
        final = await pool_versions(http, world)
        for _ in range(600):  # bounded by attempts (~60 s): the feed may lag under load
            caught_up = all(all(view.get(p) == v for p, v in final.items()) for view in views)
            if caught_up or all(t.done() for t in listeners):
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*listeners)
        for i, view in enumerate(views):
            behind = {p: (view.get(p), v) for p, v in final.items() if view.get(p) != v}
            if behind:
                stats.error("live_event", f"subscriber {i} missed changes (shown, final): {behind}")
    return stats, elapsed


async def pool_versions(http: httpx.AsyncClient, world: World) -> dict[str, int]:
    """The current version of every pool of the load."""
    versions = {}
    for pool_id in world.pool_ids:
        r = await http.get(f"/api/v1/pools/{pool_id}", headers=world.headers("admin"))
        r.raise_for_status()
        versions[pool_id] = int(r.json()["version"])
    return versions


async def check_pools(world: World) -> list[str]:
    """After the load every hold was released and every admission discharged: each pool must
    be back to zero held and zero occupied (a bed counted twice or lost shows up here)."""
    problems = []
    async with httpx.AsyncClient(base_url=world.base_url, timeout=60) as http:
        for pool_id in world.pool_ids:
            r = await http.get(f"/api/v1/pools/{pool_id}", headers=world.headers("admin"))
            if r.status_code != 200:
                problems.append(f"pool {pool_id}: {r.status_code} {r.text}")
                continue
            pool = r.json()
            if (pool["held"], pool["occupied"], pool["available"]) != (0, 0, POOL_TOTAL):
                problems.append(
                    f"pool {pool_id}: held {pool['held']}, occupied {pool['occupied']}, "
                    f"available {pool['available']} after the load"
                )
    return problems


# --- targets --------------------------------------------------------------------------------

# The server processes of the running target whose CPU time the run reads (embedded: one).
SERVER_PIDS: list[int] = []


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of ``pids`` so far (Linux ``/proc``); None if unreadable."""
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total if pids else None


def measured(run: Callable[[], tuple[Stats, float]]) -> tuple[Stats, float, dict[str, Any]]:
    """``run`` with the server's and this client's CPU time per request it served: steadier
    than req/s on a busy machine, and it says which side was the bottleneck."""
    server0, client0 = cpu_seconds(SERVER_PIDS), time.process_time()
    stats, elapsed = run()
    server1, client1 = cpu_seconds(SERVER_PIDS), time.process_time()
    served = max(1, sum(len(v) for op, v in stats.latencies.items() if op != "live_snapshot"))
    cpu: dict[str, Any] = {"client_ms_per_request": round((client1 - client0) * 1000 / served, 3)}
    if server0 is not None and server1 is not None:
        cpu["server_ms_per_request"] = round((server1 - server0) * 1000 / served, 3)
        cpu["server_cores_busy"] = round((server1 - server0) / elapsed, 2)
    cpu["client_cores_busy"] = round((client1 - client0) / elapsed, 2)
    return stats, elapsed, cpu


def _wait_ready(url: str, proc: subprocess.Popen[bytes] | None, log: Path) -> None:
    for _ in range(1200):  # bounded by attempts
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


@contextlib.contextmanager
def embedded() -> Iterator[str]:
    """``canaliza serve all`` on a free port with fresh SQLite files, demo users on."""
    with tempfile.TemporaryDirectory(prefix="canaliza-load-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANALIZA_")}
        env.update(
            CANALIZA_DATA_DIR=str(Path(tmp) / "var"),
            CANALIZA_DEMO="1",
            CANALIZA_PUBLIC_URL=base,
            PYTHONUNBUFFERED="1",
            **LOAD_SETTINGS,
        )
        log = Path(tmp) / "server.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # our own interpreter and arguments
                [sys.executable, "-m", "canaliza.launcher", "serve", "all", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        SERVER_PIDS.append(proc.pid)
        try:
            _wait_ready(base, proc, log)
            yield base
        finally:
            SERVER_PIDS.remove(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@contextlib.contextmanager
def topology() -> Iterator[str]:
    """The local topology on the machine's PostgreSQL and NATS, its own database and stream."""
    with tempfile.TemporaryDirectory(prefix="canaliza-load-cluster-") as tmp:
        logs = Path(os.environ.get("CANALIZA_LOAD_LOG_DIR") or tmp)
        cluster = Cluster(
            database=unique_name("canaliza_load"),
            pg_admin_url=PG_ADMIN_URL,
            nats_url=NATS_URL,
            nats_stream=unique_name("LOAD").upper(),
            nats_subject_prefix=unique_name("load"),  # no overlap with other runs' streams
            gateway_port=free_port(),
            log_dir=logs,
            demo=True,
            extra_env=dict(LOAD_SETTINGS),
        )
        try:
            cluster.start(timeout=180)
            yield cluster.gateway_url
        finally:
            cluster.stop()
            _drop_database(cluster.database)
            asyncio.run(_delete_stream(cluster.nats_stream))


def _drop_database(name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


async def _delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


TARGETS: dict[str, Callable[[], contextlib.AbstractContextManager[str]]] = {
    "embedded": embedded,
    "topology": topology,
}


def run_target(
    target: str,
    *,
    users: int,
    seconds: float | None = None,
    iterations: int | None = None,
    baseline_seconds: float = 0.0,
) -> dict[str, Any]:
    """Start ``target``, prepare its data, run the load (and the baseline); the result."""
    with TARGETS[target]() as base_url:
        world = asyncio.run(prepare(base_url))
        base_rps, base_ping = None, None
        base_cpu: dict[str, Any] = {}
        if baseline_seconds:
            b_stats, b_elapsed, base_cpu = measured(
                lambda: asyncio.run(
                    drive(
                        world, users=users, seconds=baseline_seconds, iterations=None,
                        baseline=True,
                    )
                )
            )  # fmt: skip
            base_rps = round(len(b_stats.latencies.get("ping", [])) / b_elapsed, 1)
            base_ping = b_stats.summary(b_elapsed).get("ping")
        stats, elapsed, cpu = measured(
            lambda: asyncio.run(drive(world, users=users, seconds=seconds, iterations=iterations))
        )
        leftovers = asyncio.run(check_pools(world))
    for problem in leftovers:
        stats.error("consistency", problem)
    per_op = stats.summary(elapsed)
    requests = sum(v["count"] for op, v in per_op.items() if op != "live_snapshot")
    return {
        "target": target,
        "users": users,
        "requests": requests,
        "errors": stats.errors,
        "error_samples": stats.samples,
        "seconds": round(elapsed, 2),
        "rps": round(requests / elapsed, 1),
        "live_subscribers": len(per_op.get("live_snapshot", {}))
        and per_op["live_snapshot"]["count"],
        "live_messages": stats.live_messages,
        "baseline_ping_rps": base_rps,
        "baseline_ping": base_ping,
        "cpu": cpu,
        "baseline_cpu": base_cpu,
        "per_operation": per_op,
        "load_average": round(os.getloadavg()[0], 2),
    }


def write_results(runs: list[dict[str, Any]], *, mode: str) -> Path:
    """Merge ``runs`` into ``var/resilience/load.json`` (replacing earlier runs of a target).

    Top level, for the resilience summary: ``users``, ``requests`` and ``errors`` over every
    target recorded; ``target`` and ``per_operation`` of the embedded run when there is one
    (else the first); ``runs`` keyed by target, each with the same fields.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "load.json"
    try:
        recorded = dict(json.loads(path.read_text()).get("runs") or {})
    except (FileNotFoundError, ValueError, AttributeError):
        recorded = {}
    recorded.update({r["target"]: {**r, "mode": mode} for r in runs})
    ordered = sorted(recorded.values(), key=lambda r: r["target"] != "embedded")
    first = ordered[0]
    data = {
        "users": max(r["users"] for r in ordered),
        "requests": sum(r["requests"] for r in ordered),
        "errors": sum(r["errors"] for r in ordered),
        "target": first["target"],
        "per_operation": first["per_operation"],
        "runs": {r["target"]: r for r in ordered},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def print_run(run: dict[str, Any]) -> None:
    print(
        f"\n{run['target']}: {run['users']} users, {run['requests']} requests in "
        f"{run['seconds']:.1f} s ({run['rps']:.0f} req/s), errors {run['errors']}, "
        f"{run['live_subscribers']} live subscribers got {run['live_messages']} changes"
    )
    ping = run.get("baseline_ping") or {}
    print(
        f"  {'operation':<20}{'count':>8}{'req/s':>9}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}"
        + ("  p95 ÷ ping p95 (target ≤ 3)" if ping else "")
    )
    for op, v in run["per_operation"].items():
        print(
            f"  {op:<20}{v['count']:>8}{v['rps']:>9.1f}"
            f"{v['p50_ms']:>10.1f}{v['p95_ms']:>10.1f}{v['p99_ms']:>10.1f}"
            + (f"{v['p95_ms'] / ping['p95_ms']:>8.1f}" if ping.get("p95_ms") else "")
        )
    if run["baseline_ping_rps"]:
        if ping:
            print(
                f"  {'ping (baseline)':<20}{ping['count']:>8}{ping['rps']:>9.1f}"
                f"{ping['p50_ms']:>10.1f}{ping['p95_ms']:>10.1f}{ping['p99_ms']:>10.1f}"
            )
        print(
            f"  baseline (authenticated ping, same users): {run['baseline_ping_rps']:.0f} req/s; "
            f"mixed/ping throughput ratio {run['rps'] / run['baseline_ping_rps']:.2f} "
            f"(target ≥ 0.85); load average {run.get('load_average', 0):.2f}"
        )
    cpu, base_cpu = run.get("cpu") or {}, run.get("baseline_cpu") or {}
    if cpu.get("server_ms_per_request") is not None:
        ratio = ""
        if base_cpu.get("server_ms_per_request"):
            ratio = (
                f" (ping {base_cpu['server_ms_per_request']:.2f} ms, "
                f"{base_cpu.get('server_cores_busy', 0):.2f} cores busy: mixed ÷ ping "
                f"{cpu['server_ms_per_request'] / base_cpu['server_ms_per_request']:.1f}×)"
            )
        print(
            f"  server CPU per request: {cpu['server_ms_per_request']:.2f} ms, "
            f"{cpu.get('server_cores_busy', 0):.2f} cores busy{ratio}"
        )
    if cpu:
        print(
            f"  client CPU per request: {cpu['client_ms_per_request']:.2f} ms, "
            f"{cpu['client_cores_busy']:.2f} cores busy"
            + (
                f" (ping {base_cpu['client_ms_per_request']:.2f} ms, "
                f"{base_cpu['client_cores_busy']:.2f} cores)"
                if base_cpu
                else ""
            )
        )
    for sample in run["error_samples"]:
        print(f"  error: {sample}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="embedded,topology")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    args = parser.parse_args()
    runs = []
    for target in args.targets.split(","):
        run = run_target(
            target,
            users=args.users,
            seconds=args.seconds,
            baseline_seconds=args.baseline_seconds,
        )
        print_run(run)
        runs.append(run)
    path = write_results(runs, mode="bench")
    print(f"\nwritten to {path}")
    sys.exit(1 if any(r["errors"] for r in runs) else 0)


if __name__ == "__main__":
    main()
