"""The token endpoint per grant, refresh rotation, revocation and introspection."""

from __future__ import annotations

import base64
import json

from sqlmodel import Session, select

from auth.database import db
from auth.models import User
from canaliza.demo import DEMO_USERS
from services.settings import get_settings
from tests.auth.conftest import event_types, events, password_form
from tests.conftest import running


def _segment(token: str, i: int) -> dict:
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def test_password_grant_in_demo_issues_an_rfc9068_access_token(make_app):
    async with running(make_app(demo=True)) as client:
        r = await client.post("/auth/token", data=password_form("fiscal"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert body["refresh_token"]
        assert r.headers["cache-control"] == "no-store"
        header, claims = _segment(body["access_token"], 0), _segment(body["access_token"], 1)
        assert header["alg"] == "ES256" and header["typ"] == "at+jwt" and header["kid"]
        role, institution = DEMO_USERS["fiscal"]
        assert claims["roles"] == [role]
        assert claims["institution_id"] == institution.id
        assert claims["iss"] == get_settings().token_issuer() == "http://testserver"
        assert claims["aud"] == "canaliza" and claims["client_id"] == "canaliza-cli"
        assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
        assert claims["jti"] and claims["sub"]
    assert "auth.login.succeeded" in event_types()


async def test_password_grant_is_refused_outside_demo_mode(make_app):
    async with running(make_app(demo=False)) as client:
        r = await client.post("/auth/token", data=password_form("fiscal", "whatever"))
        assert r.status_code == 400
        body = r.json()
        assert body["error"] == "unsupported_grant_type"
        assert "modo demostración" in body["detail"] and "error_description" in body


async def test_wrong_password_is_an_oauth_error_with_a_spanish_detail(make_app):
    async with running(make_app()) as client:
        r = await client.post("/auth/token", data=password_form("fiscal", "nope"))
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_grant"
        assert r.json()["detail"] == "Usuario o contraseña incorrectos."
        r = await client.post("/auth/token", data=password_form("nadie", "nope"))
        assert r.json()["error_description"] == "invalid_credentials"
        r = await client.post("/auth/token", data={"grant_type": "magic"})
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    failed = events("auth.login.failed")
    assert [e["payload"]["reason"] for e in failed] == ["bad_password", "unknown_user"]
    assert all("nope" not in json.dumps(e) for e in failed)


async def test_client_credentials_for_the_internal_service_client(make_app):
    app = make_app(demo=False)
    async with running(app) as client:
        settings = app.state.runtime.settings
        assert settings.service_client_id == "canaliza-services"
        assert len(settings.service_client_secret) >= 32
        r = await client.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.service_client_id,
                "client_secret": settings.service_client_secret,
            },
        )
        assert r.status_code == 200, r.text
        assert "refresh_token" not in r.json()
        claims = _segment(r.json()["access_token"], 1)
        assert claims["roles"] == ["service"] and claims["institution_id"] is None
        assert claims["sub"] == "canaliza-services"
        # HTTP Basic works too; a wrong secret is a 401 in the contract's shape.
        r = await client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(settings.service_client_id, "wrong"),
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        assert r.json()["detail"]
        # The kernel's ClientCredentials helper gets a token in-process.
        from services.clients import ClientCredentials

        token = await ClientCredentials(app.state.runtime).token()
        r = await client.get("/api/v1/sample/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.json() == {"sub": "canaliza-services", "roles": ["service"]}
    with Session(db.engine) as s:
        from auth.models import OAuthClient

        stored = s.get(OAuthClient, "canaliza-services")
        assert stored is not None and settings.service_client_secret not in (
            stored.secret_hash or ""
        )


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(make_app):
    async with running(make_app()) as client:
        first = (await client.post("/auth/token", data=password_form("coordinadora"))).json()
        form = {"grant_type": "refresh_token", "client_id": "canaliza-cli"}
        r = await client.post("/auth/token", data={**form, "refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert _segment(second["access_token"], 1)["roles"] == ["shelter_coordinator"]
        # The rotated token is presented again: refused, and the newest one dies with it.
        r = await client.post("/auth/token", data={**form, "refresh_token": first["refresh_token"]})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await client.post(
            "/auth/token", data={**form, "refresh_token": second["refresh_token"]}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    revoked = events("auth.token.revoked")
    assert [e["payload"]["reason"] for e in revoked] == ["reuse"]


async def test_revoked_tokens_are_inactive_and_refresh_is_refused(make_app):
    app = make_app()
    async with running(app) as client:
        settings = app.state.runtime.settings
        service_auth = (settings.service_client_id, settings.service_client_secret)
        issued = (await client.post("/auth/token", data=password_form("dif"))).json()
        access, refresh = issued["access_token"], issued["refresh_token"]

        r = await client.post("/auth/introspect", data={"token": access}, auth=service_auth)
        assert r.status_code == 200 and r.json()["active"] is True
        assert r.json()["roles"] == ["dif_officer"]
        r = await client.post("/auth/introspect", data={"token": refresh}, auth=service_auth)
        assert r.json()["active"] is True
        # Introspection needs an authenticated (confidential) client.
        r = await client.post(
            "/auth/introspect", data={"token": access, "client_id": "canaliza-cli"}
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"

        for token in (access, refresh):
            r = await client.post(
                "/auth/revoke", data={"token": token, "client_id": "canaliza-cli"}
            )
            assert r.status_code == 200, r.text
        for token in (access, refresh):
            r = await client.post("/auth/introspect", data={"token": token}, auth=service_auth)
            assert r.json() == {"active": False}
        r = await client.post(
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "canaliza-cli",
                "refresh_token": refresh,
            },
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await client.post("/auth/introspect", data={"token": "garbage"}, auth=service_auth)
        assert r.json() == {"active": False}
    kinds = [e["payload"]["token_type"] for e in events("auth.token.revoked")]
    assert kinds == ["access_token", "refresh_token"]


async def test_demo_users_exist_after_start_up_and_restart_is_idempotent(make_app):
    app = make_app()
    async with running(app):
        pass
    async with running(make_app()) as client:
        r = await client.post("/auth/token", data=password_form("admin"))
        assert r.status_code == 200
    with Session(db.engine) as s:
        users = {u.username: u for u in s.exec(select(User))}
    assert set(users) == set(DEMO_USERS)
    for username, (role, institution) in DEMO_USERS.items():
        assert users[username].role_list == [role]
        assert users[username].institution_id == institution.id
