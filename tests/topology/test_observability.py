"""Kernel observability: metrics, JSON access logs, request id propagation."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from canaliza.gateway import service_for
from services.app import ServiceSpec, create_app, get_runtime
from services.bus import InProcessBus
from services.clients import ServiceClient
from services.observability import JsonFormatter, current_request_id
from tests.conftest import running

router = APIRouter(prefix="/api/v1/obs")
captured: dict[str, Any] = {}


class _StaticCredentials:
    async def token(self) -> str:
        return "service-token"


@router.get("/items/{item_id}")
async def item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "request_id": current_request_id()}


@router.get("/call")
async def call_other() -> dict[str, Any]:
    """Calls another service: the current request id must travel with the call."""

    def handler(request: httpx.Request) -> httpx.Response:
        captured["headers"] = dict(request.headers)
        return httpx.Response(200, json={})

    runtime = get_runtime(_app)
    client = ServiceClient(runtime, credentials=_StaticCredentials())  # type: ignore[arg-type]
    client.service = "capacity"
    runtime.transport_for = lambda service: (  # type: ignore[method-assign]
        "http://other",
        httpx.MockTransport(handler),
    )
    await client.request("GET", "/api/v1/pools")
    return {}


_app: Any = None


@pytest.fixture
async def obs_client(test_verifier):
    global _app
    _app = create_app([ServiceSpec(name="obs", routers=[router])], bus=InProcessBus())
    async with running(_app) as client:
        yield client


async def test_metrics_are_public_and_count_by_route_template(obs_client, auth_headers):
    h = auth_headers("observer")
    for item_id in ("a1", "b2"):
        assert (await obs_client.get(f"/api/v1/obs/items/{item_id}", headers=h)).status_code == 200
    r = await obs_client.get("/metrics")  # no token needed
    assert r.status_code == 200
    text = r.text
    line = (
        'canaliza_http_requests_total{method="GET",route="/api/v1/obs/items/{item_id}",'
        'service="obs",status="200"}'
    )
    assert line in text
    counted = [ln for ln in text.splitlines() if ln.startswith(line)]
    assert float(counted[0].split()[-1]) >= 2
    # Concrete ids never become label values.
    assert "a1" not in text and "b2" not in text
    assert "canaliza_http_request_duration_seconds_bucket" in text
    assert 'canaliza_http_requests_in_flight{service="obs"}' in text


async def test_one_json_line_per_request_without_secrets(obs_client, auth_headers, caplog):
    h = auth_headers("observer")
    token = h["Authorization"].split()[1]
    with caplog.at_level(logging.INFO, logger="canaliza.access"):
        r = await obs_client.get(
            "/api/v1/obs/items/secret-id?name=Maria", headers={**h, "X-Request-ID": "rid-1"}
        )
    assert r.headers["x-request-id"] == "rid-1"
    assert r.json()["request_id"] == "rid-1"
    records = [rec for rec in caplog.records if rec.name == "canaliza.access"]
    assert len(records) == 1
    line = JsonFormatter("obs").format(records[0])
    entry = json.loads(line)
    assert entry["method"] == "GET"
    assert entry["path"] == "/api/v1/obs/items/{item_id}"
    assert entry["status"] == 200
    assert entry["service"] == "obs"
    assert entry["level"] == "info"
    assert isinstance(entry["duration_ms"], float)
    assert {"time", "request_id"} <= set(entry)
    for secret in (token, "secret-id", "Maria"):
        assert secret not in line


async def test_service_calls_forward_the_current_request_id(obs_client, auth_headers):
    r = await obs_client.get(
        "/api/v1/obs/call", headers={**auth_headers("observer"), "X-Request-ID": "rid-chain"}
    )
    assert r.status_code == 200, r.text
    assert captured["headers"]["x-request-id"] == "rid-chain"
    assert captured["headers"]["authorization"] == "Bearer service-token"


async def test_unmatched_paths_are_not_recorded_verbatim(obs_client):
    await obs_client.get("/no/such/victim-name")
    text = (await obs_client.get("/metrics")).text
    assert "victim-name" not in text
    assert 'route="<unmatched>"' in text


def test_gateway_routes_paths_to_their_owning_service():
    assert service_for("/auth/token") == "auth"
    assert service_for("/.well-known/openid-configuration") == "auth"
    assert service_for("/api/v1/pools/123/ledger") == "capacity"
    assert service_for("/api/v1/facilities") == "capacity"
    assert service_for("/api/v1/capacity/live") == "capacity"
    assert service_for("/api/v1/holds/9") == "capacity"
    assert service_for("/api/v1/referrals/7/accept") == "referral"
    assert service_for("/api/v1/institutions") == "referral"
    assert service_for("/api/v1/agreements/1/sign") == "referral"
    assert service_for("/api/v1/audit/events") == "audit"
    assert service_for("/api/v1/reports/ocupacion") == "audit"
    assert service_for("/api/v1/poolside") == "frontend"  # a prefix match needs a boundary
    assert service_for("/") == "frontend"
