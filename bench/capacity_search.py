"""Availability-search benchmark (prints figures; not a test).

Builds temporary SQLite datasets (10 pools per facility) directly through the capacity
models, serves the capacity app with uvicorn on a free loopback port in a child process,
and drives it from this process with concurrent HTTP requests:

- at every size: search vs. the bare authenticated ``GET /api/v1/capacity/ping`` of the
  same app, same token, same server, in alternating rounds (p50, p95, p99, requests/s,
  ratio), driven by pre-encoded requests on keep-alive connections (``bench.wire``) so
  that the client's own cost does not hide the server's;
- search p95 at 200 / 2,000 / 20,000 facilities;
- the server's CPU time per request of each kind (Linux ``/proc``): what a request costs
  the server, much less sensitive than req/s to other work on a shared machine.

    .venv/bin/python bench/capacity_search.py [--seconds 6] [--concurrency 8] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POOLS_PER_FACILITY = 10
# "search": 256 family shapes asked again and again (a rescue operation, a shift of
# prosecutors); "search-new": 20,000 random bodies, nearly every one new to the server.
DISTINCT_BODIES = 20_000
ISSUER = "http://bench.local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_dataset(path: Path, facilities: int, seed: int = 7) -> float:
    """Migrate a fresh SQLite file and bulk-insert the roster; returns seconds taken."""
    from sqlalchemy import insert, update

    from capacity.models import CapacityRevision, Facility, Pool
    from services.clock import utcnow
    from services.db import ServiceDatabase
    from services.ids import new_id

    started = time.perf_counter()
    db = ServiceDatabase("capacity", Facility.metadata)
    db.configure(f"sqlite:///{path}")
    db.migrate()
    rng = random.Random(seed)
    now = utcnow()
    fac_rows, pool_rows = [], []
    for i in range(facilities):
        fid = new_id()
        fac_rows.append(
            {
                "id": fid,
                "name": f"Instalación {i}",
                "kind": rng.choice(["refugio", "albergue", "casa_de_medio_camino"]),
                "operator_institution_id": new_id(),
                "state": f"{rng.randint(1, 32):02d}",
                "municipality": "Municipio",
                "specialization": rng.choice(["trafficking", "mixed"]),
                "services": ["legal", "medical"],
                "security_level": rng.choice(["standard", "high", "maximum"]),
                "max_stay_days": 90,
                "status": "active" if rng.random() < 0.9 else "suspended",
                "status_changed_at": now,
                "version": 1,
                "created_at": now,
            }
        )
        for j in range(POOLS_PER_FACILITY):
            total = rng.randint(2, 12)
            occupied = rng.randint(0, total)
            children = rng.random() < 0.5
            adult = rng.random() < 0.8
            pool_rows.append(
                {
                    "id": new_id(),
                    "facility_id": fid,
                    "name": f"Grupo {j}",
                    "sexes": rng.choice([["F"], ["F"], ["F", "X"], ["M"], ["F", "M", "X"]]),
                    "min_age": 18 if adult else 0,
                    "max_age": 120 if adult else 17,
                    "accepts_children": children,
                    "max_child_age": 12 if children else 0,
                    "max_children": rng.randint(1, 4) if children else 0,
                    "accepts_witnesses": rng.random() < 0.3,
                    "accepts_indirect_victims": rng.random() < 0.3,
                    "wheelchair_accessible": rng.random() < 0.2,
                    "migrants": rng.random() < 0.4,
                    "lgbtttiq": rng.random() < 0.2,
                    "interpreter_languages": [],
                    "total": total,
                    "occupied": occupied,
                    "held": 0,
                    "out_of_service": 0,
                    "version": 1,
                    "revision": 1,
                    "last_confirmed_at": now,
                    "created_at": now,
                }
            )
    with db.engine.begin() as conn:
        conn.execute(insert(Facility.__table__), fac_rows)  # type: ignore[attr-defined]
        for k in range(0, len(pool_rows), 5000):
            conn.execute(insert(Pool.__table__), pool_rows[k : k + 5000])  # type: ignore[attr-defined]
        table = CapacityRevision.__table__  # type: ignore[attr-defined]
        conn.execute(update(table).where(table.c.id == 1).values(revision=1))
    db.dispose()
    return time.perf_counter() - started


def serve(db_path: str, port: int, jwks_path: str) -> None:
    """Child process: the capacity app on ``port`` trusting the bench's signing key."""
    import uvicorn

    os.environ["CANALIZA_CAPACITY_DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["CANALIZA_PUBLIC_URL"] = ISSUER
    os.environ["CANALIZA_AUTO_MIGRATE"] = "0"
    from capacity.main import service
    from services import security
    from services.app import create_app
    from services.bus import InProcessBus
    from services.tokens import StaticKeySource, TokenVerifier

    security.configure_verifier(
        TokenVerifier(
            issuer=ISSUER,
            audience="canaliza",
            keys=StaticKeySource(json.loads(Path(jwks_path).read_text())),
        )
    )
    app = create_app([service()], bus=InProcessBus())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _token(key: object) -> str:
    from joserfc import jwt

    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "canaliza",
        "sub": "bench-fiscal",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "roles": ["prosecutor"],
        "institution_id": "bench",
    }
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "bench"}, claims, key)  # type: ignore[arg-type]


def _search_body(rng: random.Random) -> dict[str, Any]:
    """A realistic request: a family (one or two adults, children, sometimes a witness),
    sometimes needs, in any state or none."""
    people: list[dict[str, Any]] = [
        {"sex": rng.choice(["F", "F", "F", "M"]), "age": rng.randint(18, 45), "role": "victim"}
    ]
    if rng.random() < 0.2:
        people.append({"sex": "F", "age": rng.randint(18, 60), "role": "witness"})
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
        people.append(
            {"sex": rng.choice(["F", "M"]), "age": rng.randint(1, 12), "role": "accompanying_child"}
        )
    body: dict[str, Any] = {"people": people}
    if rng.random() < 0.3:
        body["needs"] = rng.choice(
            [{"migrant": True}, {"wheelchair": True}, {"security": "high"}, {"specialised": True}]
        )
    if rng.random() < 0.85:
        body["state"] = f"{rng.randint(1, 32):02d}"
    return body


def _requests(base: str, token: str, kind: str, count: int = 256) -> list[bytes]:
    """Pre-encoded requests of one kind (the client's work is the same for every kind)."""
    from bench.wire import request_bytes

    host = base.removeprefix("http://")
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "ping":
        return [request_bytes("GET", "/api/v1/capacity/ping", host=host, headers=headers)]
    rng = random.Random(11 if kind == "search" else 13)
    count = count if kind == "search" else DISTINCT_BODIES
    return [
        request_bytes(
            "POST",
            "/api/v1/availability/search",
            host=host,
            headers=headers,
            body=json.dumps(_search_body(rng)).encode(),
        )
        for _ in range(count)
    ]


async def _drive(
    base: str, token: str, kind: str, seconds: float, concurrency: int
) -> tuple[list[float], float]:
    """Closed loop: ``concurrency`` keep-alive connections, each sending as soon as the
    previous answer is in (offered = achieved; latency is what queues)."""
    from bench.wire import Connection

    requests = _requests(base, token, kind)
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        conn = await Connection.open(host, int(port))
        i = offset
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status, answer = await conn.send(requests[i % len(requests)])
                if status != 200:
                    raise RuntimeError(f"{kind}: {status} {answer[:200]!r}")
                latencies.append(time.perf_counter() - t0)
                i += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(k * 37) for k in range(concurrency)))
    return latencies, time.perf_counter() - started


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far; 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _side_by_side(
    base: str, token: str, seconds: float, concurrency: int, rounds: int, server_pid: int
) -> dict[str, tuple[list[float], float, list[float], float]]:
    """Search and the bare ping in alternating rounds on the same server (a load change
    on a shared machine hits both); per kind: latencies, seconds, per-round req/s, and the
    server's CPU seconds (what a request costs the server, whatever the machine's load)."""
    out: dict[str, tuple[list[float], float, list[float], float]] = {
        "search": ([], 0.0, [], 0.0),
        "search-new": ([], 0.0, [], 0.0),
        "ping": ([], 0.0, [], 0.0),
    }
    for r in range(rounds):
        order = ("ping", "search", "search-new")
        order = order if r % 2 == 0 else order[::-1]
        for kind in order:
            cpu = _cpu_seconds(server_pid)
            lat, el = asyncio.run(_drive(base, token, kind, seconds / rounds, concurrency))
            cpu = _cpu_seconds(server_pid) - cpu
            got, total, per_round, used = out[kind]
            out[kind] = (got + lat, total + el, [*per_round, len(lat) / el], used + cpu)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _start_server(db_path: Path, jwks_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(db_path), str(port), str(jwks_path)],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sizes", default="200,2000,20000")
    parser.add_argument("--serve", nargs=3, metavar=("DB", "PORT", "JWKS"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return

    from joserfc.jwk import ECKey, KeySet

    key = ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256", "use": "sig"})
    token = _token(key)
    began = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    p95_by_size: dict[int, float] = {}
    print(f"load average before: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="canaliza-bench-") as tmp:
        jwks = Path(tmp) / "jwks.json"
        jwks.write_text(json.dumps(KeySet([key]).as_dict(private=False)))
        for size in sizes:
            db_path = Path(tmp) / f"capacity-{size}.db"
            built = build_dataset(db_path, size)
            proc, base = _start_server(db_path, jwks)
            try:
                t0 = time.perf_counter()
                asyncio.run(_drive(base, token, "search", 0.3, 1))  # loads the read model
                warm = time.perf_counter() - t0
                asyncio.run(_drive(base, token, "ping", 0.3, 1))
                runs = _side_by_side(
                    base, token, args.seconds, args.concurrency, args.rounds, proc.pid
                )
                ping, p_elapsed, p_rounds, p_cpu = runs["ping"]
                p_cost = p_cpu / max(len(ping), 1)
                p_rps = len(ping) / p_elapsed
                search = runs["search"][0]
                p95_by_size[size] = _pct(search, 0.95)
                print(
                    f"{size:>6} facilities / {size * POOLS_PER_FACILITY:>6} pools: "
                    f"built in {built:.1f}s, first search + read-model load {warm:.2f}s",
                    flush=True,
                )
                for name in ("ping", "search", "search-new"):
                    lat, elapsed, rounds, used = runs[name]
                    rps = len(lat) / elapsed
                    cost = used / max(len(lat), 1)
                    line = (
                        f"         {name:<10} p50 {_pct(lat, 0.5):6.2f} ms, "
                        f"p95 {_pct(lat, 0.95):6.2f} ms, p99 {_pct(lat, 0.99):6.2f} ms, "
                        f"{rps:.0f} req/s offered = achieved (closed loop), "
                        f"server CPU {cost * 1e6:.0f} µs/request"
                    )
                    if name != "ping":
                        per_round = [s / p for s, p in zip(rounds, p_rounds, strict=True)]
                        line += (
                            f"; ÷ ping {rps / p_rps:.2f} (rounds {min(per_round):.2f}–"
                            f"{max(per_round):.2f}; target ≥ 0.90), p95 ÷ ping "
                            f"{_pct(lat, 0.95) / _pct(ping, 0.95):.2f}, ping's CPU per "
                            f"request ÷ this one's {p_cost / cost if cost else 0:.2f}"
                        )
                    print(line, flush=True)
                print(f"         load average {os.getloadavg()[0]:.2f}", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    growth = ", ".join(f"{s}: {p:.2f} ms" for s, p in p95_by_size.items())
    print(f"search p95 by facilities — {growth}")
    print(
        f"concurrency {args.concurrency}, {args.seconds:.0f}s per kind in {args.rounds} "
        f"alternating rounds, total {time.perf_counter() - began:.0f}s"
    )


if __name__ == "__main__":
    main()
