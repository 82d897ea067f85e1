"""Fixtures of the frontend tests: the demo app in process, and signing in through it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from canaliza.composition import available_packages, build_app, load_spec
from services.settings import get_settings
from tests.conftest import demo_password_form


@pytest.fixture
def demo_app(monkeypatch) -> Iterator[Any]:
    """Every service in one app on this test's SQLite files, demo users loaded at start-up."""
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.configure()
    app = build_app("all")
    yield app
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.dispose()


def hidden_fields(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str | None = None) -> str:
    """The whole authorization-code + PKCE round trip, as a browser does it; the landing URL."""
    start = await client.get("/entrar")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith("/auth/authorize?"), authorize
    form_page = await client.get(authorize)
    assert form_page.status_code == 200, form_page.text
    fields = hidden_fields(form_page.text)
    fields.update(username=username, password=password or get_settings().demo_password)
    back = await client.post("/auth/authorize", data=fields)
    assert back.status_code == 302, back.text
    location = urlsplit(back.headers["location"])
    assert location.path == "/callback", back.headers["location"]
    landed = await client.get(f"/callback?{location.query}")
    assert landed.status_code == 303, landed.text
    return landed.headers["location"]


async def small_world(client: httpx.AsyncClient) -> dict[str, str]:
    """The least the prosecutor's flow needs, made by the platform admin through the APIs:
    FGR and Casa de las Mercedes, a signed agreement between them, one active refuge in
    Mexico City with a pool for women with children. Much faster than the demo dataset."""
    from datetime import date

    from canaliza.demo import CASA_MERCEDES, FGR

    token = (await client.post("/auth/token", data=demo_password_form("admin"))).json()[
        "access_token"
    ]
    admin = {"Authorization": f"Bearer {token}"}

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status_code in (200, 201), f"{path}: {resp.text}"
        answer: dict[str, Any] = resp.json()
        return answer

    for inst in (FGR, CASA_MERCEDES):
        await post(
            "/api/v1/institutions",
            {"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state},
        )
    agreement = await post(
        "/api/v1/agreements",
        {
            "number": "PRUEBA-001",
            "title": "Convenio de prueba FGR — Casa de las Mercedes",
            "party_ids": [FGR.id, CASA_MERCEDES.id],
            "valid_from": date.today().replace(year=date.today().year - 1).isoformat(),
            "valid_to": date.today().replace(year=date.today().year + 2).isoformat(),
        },
    )
    await post(f"/api/v1/agreements/{agreement['id']}/ready", {})
    for inst in (FGR, CASA_MERCEDES):
        await post(f"/api/v1/agreements/{agreement['id']}/sign", {"institution_id": inst.id})
    facility = await post(
        "/api/v1/facilities",
        {
            "name": "Refugio de prueba Coyoacán",
            "kind": "refugio",
            "operator_institution_id": CASA_MERCEDES.id,
            "state": "09",
            "municipality": "Coyoacán",
            "status": "active",
        },
    )
    pool = await post(
        f"/api/v1/facilities/{facility['id']}/pools",
        {
            "name": "Mujeres con hijas e hijos",
            "sexes": ["F"],
            "total": 6,
            "accepts_children": True,
            "max_child_age": 12,
            "max_children": 3,
        },
    )
    await post(f"/api/v1/pools/{pool['id']}/confirm", {})
    return {"facility_id": facility["id"], "pool_id": pool["id"], "agreement_id": agreement["id"]}
