"""Sessions, sign-in through the auth service (code + PKCE), CSRF, headers, language."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from frontend.database import db
from frontend.dependencies import CSP, SESSION_COOKIE
from tests.conftest import running
from tests.frontend.conftest import csrf_of, sign_in

pytestmark = pytest.mark.slow


async def test_fiscal_signs_in_with_pkce_and_lands_on_her_screen(demo_app):
    async with running(demo_app) as client:
        start = await client.get("/entrar")
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43  # base64url of a SHA-256
        assert query["client_id"] == ["canaliza-web"]
        anonymous = client.cookies[SESSION_COOKIE]

        landing = await sign_in(client, "fiscal")
        assert landing == "/"
        # A new cookie after sign-in: a session id planted before it is worth nothing.
        assert client.cookies[SESSION_COOKIE] != anonymous
        home = await client.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/canalizaciones/nueva"
        page = await client.get("/canalizaciones/nueva")
        assert page.status_code == 200
        assert "Fiscal (demostración)" in page.text
        assert '<html lang="es-MX">' in page.text


async def test_the_session_cookie_and_security_headers(demo_app):
    async with running(demo_app) as client:
        await sign_in(client, "fiscal")
        page = await client.get("/canalizaciones/nueva")
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert "frame-ancestors 'none'" in CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and " on" + "click=" not in page.text

        start = await client.get("/entrar")  # signed in: straight back
        assert start.status_code == 303
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=demo_app), base_url="http://testserver"
        ) as stranger:
            fresh = await stranger.get("/")
        set_cookie = fresh.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
        assert "Secure" not in set_cookie  # plain http here; https deployments get Secure

        # The tokens are sealed: the table holds neither the cookie nor a JWT in clear.
        raw = client.cookies[SESSION_COOKIE]
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM web_sessions")).fetchall()
        dump = repr(rows)
        assert raw not in dump
        assert "eyJ" not in dump  # the start of every JWT


async def test_forged_callbacks_and_posts_without_the_csrf_token_are_refused(demo_app):
    async with running(demo_app) as client:
        start = await client.get("/entrar")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        forged = await client.get(f"/callback?code=forged&state={state}")
        assert forged.status_code == 400
        assert "Este enlace de acceso expiró" in forged.text
        wrong_state = await client.get("/callback?code=forged&state=another")
        assert wrong_state.status_code == 400
        assert (await client.get("/canalizaciones")).status_code == 303

        await sign_in(client, "fiscal")
        page = await client.get("/canalizaciones/nueva")
        csrf = csrf_of(page.text)
        body = {"sex": "F", "age": "30", "role": "victim", "state": "09"}

        refused = await client.post("/canalizaciones/nueva/buscar", data=body)
        assert refused.status_code == 403
        assert "Este formulario expiró o no proviene de Canaliza" in refused.text
        wrong = await client.post(
            "/canalizaciones/nueva/buscar", data={**body, "csrf_token": csrf[:-2] + "xx"}
        )
        assert wrong.status_code == 403
        header_wrong = await client.post(
            "/canalizaciones/nueva/buscar", data=body, headers={"X-CSRF-Token": "nope"}
        )
        assert header_wrong.status_code == 403

        accepted = await client.post(
            "/canalizaciones/nueva/buscar", data=body, headers={"X-CSRF-Token": csrf}
        )
        assert accepted.status_code == 200
        # Sign-out is a POST too: a cross-site link cannot sign anyone out.
        assert (await client.post("/salir")).status_code == 403
        assert (await client.get("/canalizaciones")).status_code == 200


async def test_language_switch_and_state_names(demo_app):
    async with running(demo_app) as client:
        welcome = await client.get("/")
        assert "Iniciar sesión" in welcome.text
        csrf = csrf_of(welcome.text)
        switched = await client.post(
            "/idioma", data={"language": "en", "next": "/", "csrf_token": csrf}
        )
        assert switched.status_code == 303
        english = await client.get("/")
        assert '<html lang="en">' in english.text
        assert "Sign in" in english.text and "Iniciar sesión" not in english.text

        await sign_in(client, "fiscal")
        page = await client.get("/canalizaciones/nueva")
        assert "Mexico City" in page.text and "State of Mexico" in page.text
        csrf = csrf_of(page.text)
        await client.post("/idioma", data={"language": "es-MX", "csrf_token": csrf})
        page = await client.get("/canalizaciones/nueva")
        assert "Ciudad de México" in page.text and "Estado de México" in page.text
        assert "Nuevo León" in page.text
        # An unknown language is ignored, and `next` never leaves the site.
        odd = await client.post(
            "/idioma",
            data={"language": "fr", "next": "https://evil.example/", "csrf_token": csrf},
        )
        assert odd.headers["location"] == "/"


async def test_sign_out_revokes_and_an_expiring_token_is_refreshed_server_side(demo_app):
    from frontend import service
    from frontend.database import db

    async with running(demo_app) as client:
        await sign_in(client, "fiscal")
        raw = client.cookies[SESSION_COOKIE]

        def loaded(session):
            found = service.load(session, raw)
            assert found is not None
            return found

        def tokens():
            with db.unit_of_work(write=False) as s:
                return loaded(s).tokens()

        first = tokens()

        def expire(session):
            found = loaded(session)
            service.store_tokens(session, found, {**found.tokens(), "expires_at": time.time()})

        with db.unit_of_work() as s:
            expire(s)
        page = await client.get("/canalizaciones")
        assert page.status_code == 200, page.text
        second = tokens()
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]  # rotated

        csrf = csrf_of(page.text)
        out = await client.post("/salir", data={"csrf_token": csrf})
        assert out.headers["location"] == "/?aviso=signed_out"
        again = await client.get("/canalizaciones")
        assert again.status_code == 303 and again.headers["location"].startswith("/entrar")
        # The refresh token was revoked at the auth service, not only forgotten here.
        reuse = await client.post(
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": second["refresh_token"],
                "client_id": "canaliza-web",
                "client_secret": demo_app.state.runtime.settings.frontend_client_secret,
            },
        )
        assert reuse.status_code == 400
        assert reuse.json()["error"] == "invalid_grant"


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_static_files_and_the_live_proxy(demo_app):
    """Vendor files only from the allow-list; the feed only for this site's signed-in pages."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    with TestClient(demo_app, base_url="http://testserver") as client:
        assert client.get("/vendor/package.json").status_code == 404
        assert client.get("/static/..%2F..%2Fpyproject.toml").status_code == 404
        css = client.get("/static/app.css")
        assert css.status_code == 200
        assert css.headers["content-security-policy"] == CSP
        htmx = client.get("/vendor/htmx.min.js")
        assert htmx.status_code == 200, "npm packages not installed (make setup)"
        assert htmx.headers["content-type"].startswith("text/javascript")

        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/live", headers={"origin": "https://evil.example"}) as ws,
        ):
            ws.receive_text()
        assert refused.value.code == 4403
        with (
            pytest.raises(WebSocketDisconnect) as anonymous,
            client.websocket_connect("/live", headers={"origin": "http://testserver"}) as ws,
        ):
            ws.receive_text()
        assert anonymous.value.code == 4401

        start = client.get("/entrar", follow_redirects=False)
        form = client.get(start.headers["location"])
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
        fields.update(username="fiscal", password="canaliza-demo")
        back = urlsplit(
            client.post("/auth/authorize", data=fields, follow_redirects=False).headers["location"]
        )
        client.get(f"{back.path}?{back.query}", follow_redirects=False)
        pool_id = _one_pool_in_mexico_city(client)
        with client.websocket_connect("/live", headers={"origin": "http://testserver"}) as ws:
            ready = ws.receive_json()
            assert ready["type"] == "ready"
            ws.send_json({"type": "auth", "token": "from-the-browser"})  # dropped, not relayed
            ws.send_json({"type": "subscribe", "filters": {"state": "09"}})
            snapshot = ws.receive_json()
            assert snapshot["type"] == "snapshot"
            assert [p["pool_id"] for p in snapshot["pools"]] == [pool_id]


def _one_pool_in_mexico_city(client) -> str:
    """An active facility with one pool, created by the platform admin through the API."""
    from canaliza.demo import CASA_MERCEDES

    token = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin",
            "password": "canaliza-demo",
            "client_id": "canaliza-cli",
        },
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    facility = client.post(
        "/api/v1/facilities",
        json={
            "name": "Refugio de prueba",
            "kind": "refugio",
            "operator_institution_id": CASA_MERCEDES.id,
            "state": "09",
            "municipality": "Coyoacán",
            "status": "active",
        },
        headers=auth,
    )
    assert facility.status_code == 201, facility.text
    pool = client.post(
        f"/api/v1/facilities/{facility.json()['id']}/pools",
        json={"name": "Mujeres", "sexes": ["F"], "total": 4},
        headers=auth,
    )
    assert pool.status_code == 201, pool.text
    return str(pool.json()["id"])


async def test_a_user_with_a_second_factor_is_asked_for_it_on_the_way_in(demo_app):
    import pyotp

    from services.settings import get_settings
    from tests.frontend.conftest import hidden_fields

    async with running(demo_app) as client:
        token = (
            await client.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": "fiscal",
                    "password": "canaliza-demo",
                    "client_id": "canaliza-cli",
                },
            )
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        uri = (await client.post("/auth/mfa/enroll", headers=auth)).json()["otpauth_uri"]
        totp = pyotp.parse_uri(uri)
        assert isinstance(totp, pyotp.TOTP)
        confirmed = await client.post("/auth/mfa/confirm", json={"code": totp.now()}, headers=auth)
        assert confirmed.status_code == 200, confirmed.text
        get_settings().demo = False  # outside demo mode, prosecutors must use their second factor

        start = await client.get("/entrar")
        form = await client.get(start.headers["location"])
        fields = {**hidden_fields(form.text), "username": "fiscal", "password": "canaliza-demo"}
        asked = await client.post("/auth/authorize", data=fields)
        assert asked.status_code == 200
        assert "Código de verificación" in asked.text
        fields = {**hidden_fields(asked.text), "username": "fiscal", "password": "canaliza-demo"}
        back = await client.post("/auth/authorize", data={**fields, "totp": totp.now()})
        assert back.status_code == 302, back.text
        location = urlsplit(back.headers["location"])
        landed = await client.get(f"{location.path}?{location.query}")
        assert landed.status_code == 303
        assert (await client.get("/canalizaciones")).status_code == 200


async def test_the_frontend_runs_as_its_own_service_behind_the_gateway():
    from canaliza.composition import build_app, load_spec
    from canaliza.gateway import service_for

    for path in ("/", "/entrar", "/callback", "/live", "/static/app.css", "/canalizaciones"):
        assert service_for(path) == "frontend", path
    assert service_for("/auth/authorize") == "auth"

    database = load_spec("frontend").database
    assert database is not None
    database.configure()
    try:
        app = build_app("frontend")
        async with running(app) as client:
            welcome = await client.get("/")
            assert welcome.status_code == 200 and "Iniciar sesión" in welcome.text
            start = await client.get("/entrar")
            assert start.headers["location"].startswith("/auth/authorize?")  # via the gateway
            # No auth service configured: the callback says so in Spanish, no stack trace.
            state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
            failed = await client.get(f"/callback?code=x&state={state}")
            assert failed.status_code == 400
            assert "Traceback" not in failed.text and "Este enlace de acceso expiró" in failed.text
    finally:
        database.dispose()
