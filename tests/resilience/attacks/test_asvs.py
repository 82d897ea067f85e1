"""ASVS 4.0.3 level 2 checks that had no test yet (see ``docs/security/asvs.md``).

Horizontal access between NGOs and what an auditor receives, stack traces, security
headers, and cookies that grant nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from starlette.testclient import TestClient

from canaliza.composition import build_app
from canaliza.demo import CASA_MERCEDES
from services.app import ServiceSpec, create_app
from services.settings import get_settings
from tests.conftest import running
from tests.resilience.attacks.test_leaks import VICTIM_NAMES, Session, _lifecycle
from tests.resilience.conftest import (
    DEMO_USERNAMES,
    _configure_databases,
    _dispose_databases,
    password_grant_form,
)

OTHER_NGO_PASSWORD = "otra-organizacion-2026"


def _other_ngo_coordinator(s: Session) -> str:
    """A coordinator of another NGO of the demo roster, created by the admin."""
    institutions = s.call("admin", "GET", "/api/v1/institutions").json()
    other = next(
        i["id"] for i in institutions if i["type"] == "ngo" and i["id"] != CASA_MERCEDES.id
    )
    resp = s.call(
        "admin",
        "POST",
        "/api/v1/auth/users",
        json={
            "username": "coordinadora-otra",
            "display_name": "Coordinadora de otra organización",
            "password": OTHER_NGO_PASSWORD,
            "roles": ["shelter_coordinator"],
            "institution_id": other,
        },
    )
    assert resp.status_code == 201, resp.text
    token = s.client.post(
        "/auth/token",
        data={**password_grant_form("coordinadora-otra"), "password": OTHER_NGO_PASSWORD},
    )
    assert token.status_code == 200, token.text
    s.tokens["otra"] = token.json()["access_token"]
    return other


def test_no_horizontal_access_between_institutions(demo_app) -> None:
    """A coordinator of another NGO cannot touch Casa de las Mercedes' facilities, pools,
    holds or referrals; DIF cannot act for FGR; the auditor gets no address and no identity."""
    with TestClient(demo_app) as client:
        s = Session(client)
        for username in DEMO_USERNAMES:
            s.tokens[username] = client.post(
                "/auth/token", data=password_grant_form(username)
            ).json()["access_token"]
        _other_ngo_coordinator(s)
        rid, hold_id = _lifecycle(s)  # sent by FGR, accepted by Casa
        referral = s.call("admin", "GET", f"/api/v1/referrals/{rid}").json()
        facility_id = referral["facility_id"]
        pool_id = s.call("admin", "GET", f"/api/v1/facilities/{facility_id}/pools").json()[0]["id"]
        version = s.call("admin", "GET", f"/api/v1/pools/{pool_id}").json()["version"]

        refused: list[tuple[str, str, str, dict[str, Any]]] = [
            ("otra", "PATCH", f"/api/v1/pools/{pool_id}", {"json": {"total": 1}}),
            (
                "otra",
                "POST",
                f"/api/v1/pools/{pool_id}/ledger",
                {"json": {"kind": "admit", "beds": 1, "reason": "ingreso ajeno"}},
            ),
            ("otra", "POST", f"/api/v1/pools/{pool_id}/confirm", {}),
            ("otra", "GET", f"/api/v1/referrals/{rid}", {}),
            ("otra", "GET", f"/api/v1/referrals/{rid}/identities", {}),
            ("otra", "GET", f"/api/v1/referrals/{rid}/facility-address", {}),
            ("otra", "POST", f"/api/v1/referrals/{rid}/admit", {"json": {}}),
            ("otra", "POST", f"/api/v1/referrals/{rid}/cancel", {"json": {}}),
            ("otra", "POST", f"/api/v1/holds/{hold_id}/consume", {"json": {}}),
            ("otra", "DELETE", f"/api/v1/holds/{hold_id}", {}),
            ("dif", "POST", f"/api/v1/referrals/{rid}/cancel", {"json": {}}),
            ("dif", "GET", f"/api/v1/referrals/{rid}/identities", {}),
            ("dif", "GET", f"/api/v1/referrals/{rid}/facility-address", {}),
            ("auditor", "GET", f"/api/v1/referrals/{rid}/identities", {}),
            ("auditor", "GET", f"/api/v1/referrals/{rid}/facility-address", {}),
            ("auditor", "POST", f"/api/v1/referrals/{rid}/cancel", {"json": {}}),
            ("fiscal", "GET", f"/api/v1/referrals/{rid}/identities", {}),
        ]
        for role, method, path, kw in refused:
            resp = s.call(role, method, path, **kw)
            assert resp.status_code in (403, 404), (role, method, path, resp.text)
            assert set(resp.json()) >= {"error", "detail"}

        # Nothing changed for the refused writes.
        after = s.call("admin", "GET", f"/api/v1/pools/{pool_id}").json()
        assert after["version"] == version
        assert s.call("admin", "GET", f"/api/v1/referrals/{rid}").json()["status"] == "accepted"
        assert s.call("admin", "GET", f"/api/v1/holds/{hold_id}").json()["status"] == "active"

        for role in ("otra", "auditor", "fiscal", "dif"):
            facility = s.call(role, "GET", f"/api/v1/facilities/{facility_id}")
            assert facility.status_code in (200, 403), facility.text
            assert not (facility.json().get("address")), (role, facility.json())
        seen = s.call("auditor", "GET", f"/api/v1/referrals/{rid}").json()
        assert seen["deidentified"] is True
        assert all(p["age"] is None and p["pseudonym"] is None for p in seen["people"])
        # ...while the parties themselves may.
        assert s.call("coordinadora", "GET", f"/api/v1/facilities/{facility_id}").json()["address"]
        names = s.call("coordinadora", "GET", f"/api/v1/referrals/{rid}/identities").json()
        assert {n["name"] for n in names} == set(VICTIM_NAMES)


@pytest.fixture
def plain_app(monkeypatch) -> Any:
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    _configure_databases()
    yield build_app("all")
    _dispose_databases()


async def test_an_unexpected_error_shows_no_stack_trace_and_is_logged(caplog) -> None:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM internals -- /srv/canaliza/capacity/service.py")

    app = create_app([ServiceSpec(name="boom", public_routers=[router])])
    caplog.set_level(logging.ERROR)
    async with app.router.lifespan_context(app):
        # The server re-raises after answering (for its own log); the client sees the answer.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            resp = await c.get("/boom")
    assert resp.status_code == 500
    assert resp.json() == {
        "error": "internal_error",
        "detail": "Error interno; el incidente quedó registrado.",
    }
    for fragment in ("Traceback", "RuntimeError", "secret", ".py"):
        assert fragment not in resp.text
    assert any(r.exc_info for r in caplog.records), "the incident is in the log"


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/api/v1/facilities", {}),
        ("GET", "/api/v1/facilities", {"headers": {"Authorization": "Bearer x"}}),
        ("POST", "/auth/token", {"data": {"grant_type": "nope"}}),
        ("GET", "/api/v1/facilities?" + "q=1&" * 4000, {}),
    ],
)
async def test_security_headers_on_every_answer(plain_app, method, path, kw) -> None:
    async with running(plain_app) as client:
        resp = await client.request(method, path, **kw)
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.headers)
    assert resp.headers.get("x-request-id")
    if path.startswith(("/api/", "/auth/")):
        assert "no-store" in resp.headers["cache-control"]
        assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert not {"server", "x-powered-by"} & set(resp.headers)


async def test_cookies_grant_nothing_on_the_api(plain_app) -> None:
    """The API authenticates by the Authorization header only, so a forged cross-site
    request (which carries cookies, never that header) is refused: no CSRF surface."""
    async with running(plain_app) as client:
        token = (await client.post("/auth/token", data=password_grant_form("admin"))).json()[
            "access_token"
        ]
        for cookie in ("access_token", "session", "Authorization"):
            client.cookies.set(cookie, token)
        resp = await client.post(
            "/api/v1/institutions",
            json={"name": "Institución falsa", "type": "ngo", "state": "09"},
        )
    assert resp.status_code == 401, resp.text


async def test_passwords_are_stored_as_argon2id_only(plain_app) -> None:
    """ASVS 2.4.1: the stored credential is an argon2id hash, never the password."""
    from sqlmodel import Session as DbSession
    from sqlmodel import select

    from auth.database import db as auth_db
    from auth.models import User

    async with running(plain_app):  # start-up seeds the demo users
        pass
    password = get_settings().demo_password
    with DbSession(auth_db.engine) as session:
        users = session.exec(select(User)).all()
    assert users
    for user in users:
        assert user.password_hash.startswith("$argon2id$"), user.username
        assert password not in user.password_hash
