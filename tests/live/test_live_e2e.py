"""End to end: a ledger entry on the capacity API reaches a live WebSocket client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from alembic import command
from websockets.asyncio.client import connect

from capacity.database import db
from capacity.live import live_router, set_snapshot_provider, start_live, stop_live
from capacity.main import service
from capacity.service import pool_snapshot_rows
from services.app import create_app
from services.bus import InProcessBus
from services.db import alembic_config
from services.demo import CASA_MERCEDES, FGR, PLATFORM
from services.settings import get_settings
from tests.live.conftest import ServerThread


def _snapshot(filters: dict[str, Any]) -> list[dict[str, Any]]:
    with db.new_session() as session:
        return pool_snapshot_rows(
            session, state=filters.get("state"), facility_id=filters.get("facility_id")
        )


async def _recv(ws: Any) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if msg["type"] != "ping":
            return msg


async def test_a_ledger_entry_reaches_a_live_client_with_the_new_version(tmp_path, make_token):
    url = f"sqlite:///{tmp_path}/capacity.db"
    command.upgrade(alembic_config("capacity", url, db.metadata), "head")
    db.configure(url)
    get_settings().auto_migrate = False
    spec = service()
    spec.public_routers.append(live_router)
    spec.on_startup.append(start_live)
    spec.on_shutdown.append(stop_live)
    app = create_app([spec], bus=InProcessBus())
    set_snapshot_provider(_snapshot)
    admin = {"Authorization": "Bearer " + make_token("platform_admin", institution_id=PLATFORM.id)}
    coordinator = {
        "Authorization": "Bearer "
        + make_token("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    }
    try:
        async with (
            ServerThread(app) as server,
            httpx.AsyncClient(base_url=server.http_url, timeout=15) as http,
        ):
            r = await http.post(
                "/api/v1/facilities",
                json={
                    "name": "Refugio Esperanza",
                    "kind": "refugio",
                    "operator_institution_id": CASA_MERCEDES.id,
                    "state": "09",
                    "municipality": "Cuauhtémoc",
                    "address": "Calle Secreta 123",
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            facility = r.json()
            r = await http.patch(
                f"/api/v1/facilities/{facility['id']}",
                json={"status": "active", "reason": "visita de verificación"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            r = await http.post(
                f"/api/v1/facilities/{facility['id']}/pools",
                json={
                    "name": "Mujeres",
                    "sexes": ["F"],
                    "min_age": 18,
                    "max_age": 120,
                    "total": 4,
                    "accepts_children": True,
                    "max_child_age": 12,
                    "max_children": 4,
                    "wheelchair_accessible": False,
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            pool = r.json()

            ws = await connect(server.ws_url)
            token = make_token("prosecutor", institution_id=FGR.id)
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert (await _recv(ws))["type"] == "ready"
            await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "09"}}))
            snap = await _recv(ws)
            assert snap["type"] == "snapshot"
            [shown] = [p for p in snap["pools"] if p["pool_id"] == pool["id"]]
            assert shown["version"] == pool["version"] and shown["available"] == 4
            assert "address" not in json.dumps(snap)

            r = await http.post(
                f"/api/v1/pools/{pool['id']}/ledger",
                json={"kind": "admit", "beds": 1, "reason": "ingreso"},
                headers=coordinator,
            )
            assert r.status_code == 201, r.text
            after = r.json()["pool"]
            msg = await _recv(ws)
            while msg["type"] == "facility":  # the activation's own change, when relayed late
                msg = await _recv(ws)
            assert (msg["type"], msg["pool_id"], msg["version"]) == (
                "pool",
                pool["id"],
                after["version"],
            )
            assert after["version"] > pool["version"]
            assert (msg["occupied"], msg["available"]) == (1, 3)
            assert msg["sequence"] > snap["sequence"]
            await ws.close()
    finally:
        set_snapshot_provider(None)
        db.dispose()
