"""Fault-test fixtures: our own PostgreSQL and NATS (never the machine's), and helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, FGR, PLATFORM
from tests.resilience.faults.servers import OwnNats, OwnPostgres


@pytest.fixture(scope="session")
def own_pg() -> Iterator[OwnPostgres]:
    """A PostgreSQL of our own on a free port: tests may crash and restart it."""
    server = OwnPostgres().init()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def own_nats() -> Iterator[OwnNats]:
    """A NATS JetStream of our own on a free port: tests may stop and restart it."""
    server = OwnNats().start()
    try:
        yield server
    finally:
        server.destroy()


class Actors:
    """Authorization headers of the actors the fault tests need."""

    def __init__(self, make_token: Callable[..., str]) -> None:
        self.make_token = make_token

    def bearer(self, *roles: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.make_token(*roles, ttl=3600, **kw)}

    def admin(self) -> dict[str, str]:
        return self.bearer("platform_admin", institution_id=PLATFORM.id, sub="admin")

    def coordinator(self) -> dict[str, str]:
        return self.bearer("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")

    def prosecutor(self, sub: str = "fiscal") -> dict[str, str]:
        return self.bearer("prosecutor", institution_id=FGR.id, sub=sub)


@pytest.fixture
def actors(make_token: Callable[..., str]) -> Actors:
    return Actors(make_token)


FACILITY = {
    "name": "Refugio Resiliencia",
    "kind": "refugio",
    "operator_institution_id": CASA_MERCEDES.id,
    "state": "09",
    "municipality": "Cuauhtémoc",
    "address": "Calle Reservada 7, Col. Centro",
}

POOL = {
    "name": "Mujeres adultas",
    "sexes": ["F"],
    "min_age": 18,
    "max_age": 120,
    "accepts_children": False,
    "max_child_age": 0,
    "max_children": 0,
    "wheelchair_accessible": False,
}


async def facility_with_pools(
    http: httpx.AsyncClient, actors: Actors, *totals: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An active facility with one pool per ``total`` (through the public API)."""
    r = await http.post("/api/v1/facilities", json=FACILITY, headers=actors.admin())
    assert r.status_code == 201, r.text
    fac = r.json()
    r = await http.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"status": "active", "reason": "visita de verificación"},
        headers=actors.admin(),
    )
    assert r.status_code == 200, r.text
    pools = []
    for i, total in enumerate(totals):
        r = await http.post(
            f"/api/v1/facilities/{fac['id']}/pools",
            json={**POOL, "name": f"Mujeres adultas {i + 1}", "total": total},
            headers=actors.admin(),
        )
        assert r.status_code == 201, r.text
        pools.append(r.json())
    return fac, pools


def is_error_body(response: httpx.Response) -> bool:
    """The contract's error shape: a JSON object with ``error`` and a non-empty ``detail``."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("error")) and bool(body.get("detail"))
