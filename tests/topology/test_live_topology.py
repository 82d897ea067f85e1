"""The live capacity feed across replicas: one NATS stream fans changes out to every hub."""

from __future__ import annotations

import httpx
import pytest

from canaliza.cluster import Cluster
from tests.topology.conftest import LiveClient, bearer, password_token, wait_until
from tests.topology.test_cluster import _facility_with_pool

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.slow]


def test_a_client_of_replica_1_sees_a_change_made_through_replica_2(cluster: Cluster) -> None:
    admin = password_token(cluster.gateway_url, "admin")
    one, two = cluster.members["capacity-1"].url, cluster.members["capacity-2"].url
    pool = _facility_with_pool(two, admin, total=7)
    client = LiveClient(one, admin, {"facility_id": pool["facility_id"]})
    try:
        client.wait_ready()
        assert client.connections == [one]
        shown = client.pool(pool["id"])
        assert shown is not None and shown["occupied"] == 0
        before = shown["version"]
        r = httpx.post(
            f"{two}/api/v1/pools/{pool['id']}/ledger",
            json={"kind": "admit", "beds": 3, "reason": "ingreso"},
            headers=bearer(admin),
            timeout=10,
        )
        assert r.status_code == 201, r.text
        seen = wait_until(
            lambda: (p := client.pool(pool["id"])) and p["version"] > before and p, attempts=150
        )
        assert (seen["occupied"], seen["available"]) == (3, 4)
        assert seen["version"] == before + 1
        # Still the one connection to replica 1: the change came over the bus, not a reconnect.
        assert client.connections == [one] and not client.drops and not client.errors
    finally:
        client.close()
