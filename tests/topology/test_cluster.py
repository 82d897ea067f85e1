"""The distributed topology: separate processes, one PostgreSQL, one gateway."""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

import httpx
import pytest

from canaliza.cluster import Cluster
from canaliza.demo import CASA_MERCEDES
from tests.topology.conftest import (
    FACILITY,
    POOL,
    LiveClient,
    bearer,
    password_token,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.slow]


def _facility_with_pool(base: str, admin: str, **pool: Any) -> dict[str, Any]:
    r = httpx.post(
        base + "/api/v1/facilities",
        json={**FACILITY, "operator_institution_id": CASA_MERCEDES.id},
        headers=bearer(admin),
        timeout=15,
    )
    assert r.status_code == 201, r.text
    fac = r.json()
    r = httpx.patch(
        f"{base}/api/v1/facilities/{fac['id']}",
        json={"status": "active", "reason": "visita de verificación"},
        headers=bearer(admin),
        timeout=15,
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{base}/api/v1/facilities/{fac['id']}/pools",
        json={**POOL, **pool},
        headers=bearer(admin),
        timeout=15,
    )
    assert r.status_code == 201, r.text
    pool_row: dict[str, Any] = r.json()
    return pool_row


def _capacity_warnings(cluster: Cluster) -> str:
    """Capacity's and the gateway's warnings and last lines (for a failing test's message)."""
    lines = []
    for name, member in cluster.members.items():
        if (name.startswith("capacity") or name == "gateway") and member.log_path:
            text = member.log_path.read_text(errors="replace").splitlines()
            lines += [f"{name}: {line}" for line in text if '"level": "info"' not in line][-15:]
            lines += [f"{name} (tail): {line}" for line in text[-6:]]
    return "\n".join(lines)


def test_every_service_is_ready(cluster: Cluster) -> None:
    names = set(cluster.members)
    assert {"auth", "capacity-1", "capacity-2", "gateway"} <= names
    for member in cluster.members.values():
        assert member.alive(), member.name
        r = httpx.get(member.url + "/readyz", timeout=10)
        assert r.status_code == 200, (member.name, r.text)
    checks = httpx.get(cluster.gateway_url + "/readyz", timeout=10).json()["checks"]
    assert checks["auth"] == "ok" and checks["capacity"] == "ok"


def test_a_token_from_the_auth_process_is_accepted_by_capacity(cluster: Cluster) -> None:
    token = password_token(cluster.members["auth"].url, "fiscal")
    for replica in ("capacity-1", "capacity-2"):
        r = httpx.get(
            cluster.members[replica].url + "/api/v1/facilities", headers=bearer(token), timeout=10
        )
        assert r.status_code == 200, r.text
    # A client-credentials token of the internal service client works too.
    r = httpx.post(
        cluster.members["auth"].url + "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "canaliza-services",
            "client_secret": cluster.service_secret,
        },
        timeout=15,
    )
    assert r.status_code == 200, r.text
    r = httpx.get(
        cluster.members["capacity-2"].url + "/api/v1/facilities",
        headers=bearer(r.json()["access_token"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    # A forged token is refused with the error model, not a 500.
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    r = httpx.get(
        cluster.members["capacity-1"].url + "/api/v1/facilities", headers=bearer(forged), timeout=10
    )
    assert r.status_code == 401
    assert set(r.json()) >= {"error", "detail"}


def test_a_change_through_replica_1_is_visible_through_replica_2(cluster: Cluster) -> None:
    admin = password_token(cluster.gateway_url, "admin")
    one, two = cluster.members["capacity-1"].url, cluster.members["capacity-2"].url
    pool = _facility_with_pool(one, admin, total=5)
    r = httpx.post(
        f"{one}/api/v1/pools/{pool['id']}/ledger",
        json={"kind": "admit", "beds": 2, "reason": "ingreso"},
        headers=bearer(admin),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    seen = httpx.get(f"{two}/api/v1/pools/{pool['id']}", headers=bearer(admin), timeout=10)
    assert seen.status_code == 200, seen.text
    assert seen.json()["occupied"] == 2
    assert seen.json()["available"] == 3
    assert seen.json()["version"] > pool["version"]


def test_the_request_id_travels_through_the_gateway_into_the_service_logs(
    cluster: Cluster,
) -> None:
    admin = password_token(cluster.gateway_url, "admin")
    request_id = f"topo-{uuid.uuid4().hex}"
    r = httpx.get(
        cluster.gateway_url + "/api/v1/facilities",
        headers={**bearer(admin), "X-Request-ID": request_id},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == request_id

    def logged() -> bool:
        text = "".join(
            (m.log_path.read_text(errors="replace") if m.log_path else "")
            for name, m in cluster.members.items()
            if name.startswith("capacity")
        )
        return f'"request_id": "{request_id}"' in text and '"/api/v1/facilities"' in text

    wait_until(logged)
    # Tokens never reach the logs.
    for member in cluster.members.values():
        assert member.log_path is not None
        assert admin not in member.log_path.read_text(errors="replace")
    metrics = httpx.get(cluster.members["capacity-1"].url + "/metrics", timeout=10).text
    assert "canaliza_http_requests_total" in metrics


def test_a_dependency_that_is_down_is_a_clean_503_and_recovers(cluster: Cluster) -> None:
    admin = password_token(cluster.gateway_url, "admin")
    replicas = [cluster.members["capacity-1"], cluster.members["capacity-2"]]
    auth = cluster.members["auth"]
    for member in (*replicas, auth):
        cluster.stop_member(member)
    try:
        r = httpx.get(cluster.gateway_url + "/api/v1/facilities", headers=bearer(admin), timeout=10)
        assert r.status_code == 503
        assert r.json()["error"] == "service_unavailable" and r.json()["detail"]
        r = httpx.post(
            cluster.gateway_url + "/auth/token",
            data={"grant_type": "client_credentials"},
            timeout=10,
        )
        assert r.status_code == 503 and set(r.json()) == {"error", "detail"}
        assert httpx.get(cluster.gateway_url + "/readyz", timeout=10).status_code == 503
    finally:
        for member in (auth, *replicas):
            cluster.start_member(member)
        cluster.wait_ready([auth, *replicas], timeout=120)
    # Nothing restarted the gateway: it recovers by itself.
    wait_until(lambda: httpx.get(cluster.gateway_url + "/readyz", timeout=5).status_code == 200)
    r = httpx.get(cluster.gateway_url + "/api/v1/facilities", headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text


def test_kill_9_of_a_replica_during_holds_loses_nothing_and_grants_no_bed_twice(
    cluster: Cluster,
) -> None:
    admin = password_token(cluster.gateway_url, "admin")
    fiscal = password_token(cluster.gateway_url, "fiscal")
    total = 10
    pool = _facility_with_pool(cluster.gateway_url, admin, total=total)
    victim = cluster.members["capacity-2"]
    attempts = 24
    # Live clients: one on the replica about to die, one through the gateway. Both must
    # end with every change, the first after reconnecting through the gateway.
    filters = {"facility_id": pool["facility_id"]}
    on_victim = LiveClient(victim.url, fiscal, filters, fallback_url=cluster.gateway_url)
    via_gateway = LiveClient(cluster.gateway_url, fiscal, filters)
    clients = (on_victim, via_gateway)

    def change(i: int) -> tuple[str, int, str | None]:
        """Even: a hold of one bed (prosecutor); odd: an admission ledger entry (admin)."""
        if i == attempts // 3:
            cluster.stop_member(victim, kill=True)
        kind = "hold" if i % 2 == 0 else "admit"
        try:
            if kind == "hold":
                r = httpx.post(
                    cluster.gateway_url + "/api/v1/holds",
                    json={"allocations": [{"pool_id": pool["id"], "beds": 1}], "ttl_minutes": 60},
                    headers=bearer(fiscal),
                    timeout=20,
                )
            else:
                r = httpx.post(
                    f"{cluster.gateway_url}/api/v1/pools/{pool['id']}/ledger",
                    json={"kind": "admit", "beds": 1, "reason": f"ingreso {i}"},
                    headers=bearer(admin),
                    timeout=20,
                )
        except httpx.HTTPError:
            return kind, -1, None
        return kind, r.status_code, (r.json().get("id") if r.status_code == 201 else None)

    try:
        for client in clients:
            client.wait_ready()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
                results = list(ex.map(change, range(attempts)))
            assert victim.process is not None and victim.process.poll() == -9  # really killed
            # The gateway fails over: round robin would pick the dead replica every other
            # request, yet every one is answered, and the gateway stays ready (degraded).
            for _ in range(4):
                r = httpx.get(
                    cluster.gateway_url + "/api/v1/facilities", headers=bearer(admin), timeout=10
                )
                assert r.status_code == 200, r.text
            assert httpx.get(cluster.gateway_url + "/readyz", timeout=10).status_code == 200
        finally:
            if not victim.alive():
                cluster.start_member(victim)  # it comes back while the checks below run

        statuses = [s for _, s, _ in results]
        assert set(statuses) <= {201, 409, 503, -1}, statuses
        granted = [h for k, s, h in results if k == "hold" and s == 201 and h]
        admitted = sum(1 for k, s, _ in results if k == "admit" and s == 201)
        ambiguous = {
            kind: sum(1 for k, s, _ in results if k == kind and s in (503, -1))
            for kind in ("hold", "admit")
        }
        assert len(granted) > 0 and len(set(granted)) == len(granted)
        after = httpx.get(
            f"{cluster.gateway_url}/api/v1/pools/{pool['id']}", headers=bearer(admin), timeout=10
        ).json()
        # Every answered change is committed; one cut by the kill committed wholly or not at all.
        assert len(granted) <= after["held"] <= len(granted) + ambiguous["hold"]
        assert admitted <= after["occupied"] <= admitted + ambiguous["admit"]
        assert after["held"] + after["occupied"] <= total
        assert after["available"] == total - after["held"] - after["occupied"]
        for hold_id in granted:
            r = httpx.get(f"{cluster.gateway_url}/api/v1/holds/{hold_id}", headers=bearer(fiscal))
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "active"

        # The live clients caught up with the database, without a gap.
        for client in clients:
            try:
                final = wait_until(
                    lambda c=client: (
                        (p := c.pool(pool["id"])) and p["version"] >= after["version"] and p
                    ),
                    attempts=150,
                )
            except AssertionError as exc:
                logs = _capacity_warnings(cluster)
                others = [c.describe() for c in clients if c is not client]
                raise AssertionError(
                    f"{client.describe()} want {after}\nothers: {others}\n{logs}"
                ) from exc
            assert final["version"] == after["version"]
            assert (final["held"], final["occupied"], final["available"]) == (
                after["held"],
                after["occupied"],
                after["available"],
            )
            seen = client.versions[pool["id"]]
            assert seen == list(range(seen[0], after["version"] + 1)), seen  # every version once
            assert not client.errors and client.resets == 0, (client.errors, client.resets)
        # The victim's client lost its replica, came back through the gateway, and resumed
        # from its last sequence (the missed changes replayed, no second snapshot).
        assert on_victim.connections[0] == victim.url and on_victim.drops
        assert set(on_victim.connections[1:]) == {cluster.gateway_url}
        assert on_victim.snapshots == 1
    finally:
        for client in clients:
            client.close()
        cluster.wait_ready([victim], timeout=120)


def test_the_gateway_documents_every_service_and_fronts_the_ui(cluster: Cluster) -> None:
    from services.apidocs import SCHEMA_REF

    spec = httpx.get(cluster.gateway_url + "/openapi.json", timeout=20)
    assert spec.status_code == 200, spec.text
    merged = spec.json()
    assert merged["x-canaliza-services"] == [
        n
        for n in ("auth", "capacity", "referral", "audit")
        if n in cluster.members or f"{n}-1" in cluster.members
    ]
    # Every path each service documents itself, and nothing else.
    own: set[str] = set()
    for name, member in cluster.members.items():
        if name in ("gateway", "frontend"):
            continue
        own |= set(httpx.get(member.url + "/openapi.json", timeout=20).json()["paths"])
    assert set(merged["paths"]) == own
    assert {"/api/v1/facilities", "/api/v1/holds", "/api/v1/referrals", "/auth/token"} <= own
    text = str(merged)
    refs = {r.split("'")[0] for r in text.split(f"'$ref': '{SCHEMA_REF}")[1:]}
    assert refs and refs <= set(merged["components"]["schemas"])
    docs = httpx.get(cluster.gateway_url + "/docs", timeout=10)
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    root = httpx.get(cluster.gateway_url + "/", timeout=10, follow_redirects=False)
    if "frontend" in cluster.members:
        assert root.status_code == 200 and "text/html" in root.headers["content-type"]
    else:
        assert root.status_code == 307 and root.headers["location"] == "/docs"
