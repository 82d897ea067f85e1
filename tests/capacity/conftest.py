"""Capacity test fixtures: a migrated database per test, the app, and data factories."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, FGR, PLATFORM
from capacity.database import db
from capacity.main import service
from services.app import create_app
from services.bus import InProcessBus
from services.settings import get_settings
from tests.conftest import database_copy, migrate_template, running

ADMIN = ("platform_admin",)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> str:
    return migrate_template(tmp_path_factory, "capacity", db.metadata)


@pytest.fixture
def capacity_db(tmp_path, migrated_template) -> Iterator[str]:
    with database_copy(migrated_template, tmp_path, db) as url:
        yield url


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def capacity_app(test_verifier, capacity_db, bus):
    get_settings().auto_migrate = False
    return create_app([service()], bus=bus)


@dataclass
class Cap:
    """A client bound to the app plus factories that go through the public API."""

    client: httpx.AsyncClient
    headers: Callable[..., dict[str, str]]

    def admin(self) -> dict[str, str]:
        return self.headers("platform_admin", institution_id=PLATFORM.id, sub="admin")

    def prosecutor(self) -> dict[str, str]:
        return self.headers("prosecutor", institution_id=FGR.id, sub="fiscal")

    def coordinator(self, institution_id: str = CASA_MERCEDES.id) -> dict[str, str]:
        return self.headers("shelter_coordinator", institution_id=institution_id, sub="coord")

    def service(self) -> dict[str, str]:
        return self.headers("service", sub="referral-service")

    async def facility(self, *, active: bool = True, **over: Any) -> dict[str, Any]:
        body = {
            "name": "Refugio Esperanza",
            "kind": "refugio",
            "operator_institution_id": CASA_MERCEDES.id,
            "state": "09",
            "municipality": "Cuauhtémoc",
            "address": "Calle Secreta 123, Col. Centro",
            "services": ["legal", "medical", "mental_health"],
            "security_level": "high",
            "max_stay_days": 90,
            **over,
        }
        r = await self.client.post("/api/v1/facilities", json=body, headers=self.admin())
        assert r.status_code == 201, r.text
        fac = r.json()
        if active:
            r = await self.client.patch(
                f"/api/v1/facilities/{fac['id']}",
                json={"status": "active", "reason": "visita de verificación"},
                headers=self.admin(),
            )
            assert r.status_code == 200, r.text
            fac = r.json()
        return fac

    async def pool(self, facility_id: str, **over: Any) -> dict[str, Any]:
        body = {
            "name": "Mujeres con hijas e hijos",
            "sexes": ["F"],
            "min_age": 18,
            "max_age": 120,
            "total": 4,
            "accepts_children": True,
            "max_child_age": 12,
            "max_children": 4,
            "wheelchair_accessible": False,
            **over,
        }
        r = await self.client.post(
            f"/api/v1/facilities/{facility_id}/pools", json=body, headers=self.admin()
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def search(self, people: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/availability/search",
            json={"people": people, **extra},
            headers=self.prosecutor(),
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def hold(self, allocations: list[dict[str, Any]], **extra: Any) -> httpx.Response:
        headers = {**self.prosecutor(), **extra.pop("headers", {})}
        return await self.client.post(
            "/api/v1/holds", json={"allocations": allocations, **extra}, headers=headers
        )


@pytest.fixture
async def cap(capacity_app, auth_headers) -> AsyncIterator[Cap]:
    async with running(capacity_app) as client:
        yield Cap(client, auth_headers)


@contextlib.asynccontextmanager
async def capacity_on_postgres(
    pg_url: str, auth_headers: Callable[..., dict[str, str]], *, pool_size: int
) -> AsyncIterator[Cap]:
    """The capacity service on a fresh PostgreSQL database, for the concurrency tests."""
    db.configure(pg_url, pool_size=pool_size, max_overflow=10)
    try:
        get_settings().auto_migrate = True
        app = create_app([service()], bus=InProcessBus())
        async with running(app) as client:
            assert db.engine.dialect.name == "postgresql"
            yield Cap(client, auth_headers)
    finally:
        db.dispose()
