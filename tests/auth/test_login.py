"""Lockout, audit events, the sign-in page with PKCE, and the TOTP second factor."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from sqlmodel import Session

from auth import institutions, service
from auth.database import db
from auth.models import OAuthClient
from canaliza.demo import FGR
from services.clock import clock
from tests.auth.conftest import event_types, events, password_form, pkce_pair
from tests.conftest import running

REDIRECT = "http://127.0.0.1:53682/callback"


async def test_lockout_after_configured_failures_then_unlock_after_the_window(make_app):
    """Lockout is per (username, client address) and never announced: a locked pair gets
    the same answer as a wrong password; another address is not locked out."""
    app = make_app(CANALIZA_AUTH_MAX_FAILED_LOGINS="3", CANALIZA_AUTH_LOCKOUT_MINUTES="10")
    clock.freeze()
    generic = {"error": "invalid_grant", "error_description": "invalid_credentials"}
    async with running(app) as client:
        for _ in range(3):
            r = await client.post("/auth/token", data=password_form("fiscal", "mala"))
            assert r.status_code == 400
            assert {k: r.json()[k] for k in generic} == generic
        assert r.json()["detail"] == "Usuario o contraseña incorrectos."
        # The right password does not help this address while the pair is locked, and the
        # answer is the generic one (the caller cannot tell a lock from a wrong password).
        locked = await client.post("/auth/token", data=password_form("fiscal"))
        assert locked.status_code == 400 and locked.json() == r.json()
        # The person herself, from her own address, is not locked out.
        other = httpx.ASGITransport(app=app, client=("10.9.8.7", 4000))
        async with httpx.AsyncClient(transport=other, base_url="http://testserver") as own:
            assert (await own.post("/auth/token", data=password_form("fiscal"))).status_code == 200
        clock.advance(timedelta(minutes=11))
        r = await client.post("/auth/token", data=password_form("fiscal"))
        assert r.status_code == 200
    types = event_types()
    assert types.count("auth.user.locked") == 1
    reasons = [e["payload"]["reason"] for e in events("auth.login.failed")]
    assert reasons == ["bad_password", "bad_password", "bad_password", "locked"]
    assert types[-1] == "auth.login.succeeded"


async def _authorize(client, challenge, **extra):
    params = {
        "response_type": "code",
        "client_id": "canaliza-cli",
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return await client.get("/auth/authorize", params=params), params


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html))


async def test_authorization_code_with_pkce_through_the_sign_in_page(make_app):
    async with running(make_app()) as client:
        verifier, challenge = pkce_pair()
        page, _ = await _authorize(client, challenge)
        assert page.status_code == 200 and "Iniciar sesión" in page.text
        form = _hidden(page.text)
        # Without the CSRF cookie's twin the form is refused.
        r = await client.post(
            "/auth/authorize",
            data={**form, "csrf_token": "forged", "username": "fiscal", "password": "x"},
        )
        assert r.status_code == 403
        r = await client.post(
            "/auth/authorize",
            data={**form, "username": "fiscal", "password": "incorrecta"},
        )
        assert r.status_code == 401 and "incorrectos" in r.text
        r = await client.post(
            "/auth/authorize",
            data={**form, "username": "fiscal", "password": "canaliza-demo"},
        )
        assert r.status_code == 302, r.text
        location = urlsplit(r.headers["location"])
        query = parse_qs(location.query)
        assert location.netloc == "127.0.0.1:53682" and query["state"] == ["xyz"]
        code = query["code"][0]
        token_form = {
            "grant_type": "authorization_code",
            "client_id": "canaliza-cli",
            "code": code,
            "redirect_uri": REDIRECT,
        }
        r = await client.post("/auth/token", data={**token_form, "code_verifier": "x" * 50})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        # A failed exchange consumed the code: it works once at most.
        r = await client.post("/auth/token", data={**token_form, "code_verifier": verifier})
        assert r.status_code == 400

        page, _ = await _authorize(client, challenge)
        r = await client.post(
            "/auth/authorize",
            data={**_hidden(page.text), "username": "fiscal", "password": "canaliza-demo"},
        )
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        r = await client.post(
            "/auth/token", data={**token_form, "code": code, "code_verifier": verifier}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id_token"] and body["refresh_token"]
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        r = await client.get("/api/v1/sample/whoami", headers=headers)
        assert r.json()["roles"] == ["prosecutor"]
        r = await client.post(
            "/auth/token", data={**token_form, "code": code, "code_verifier": verifier}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_authorization_requests_without_s256_pkce_or_with_foreign_redirects_fail(make_app):
    async with running(make_app()) as client:
        _, challenge = pkce_pair()
        r, _ = await _authorize(client, "", code_challenge_method="")
        assert r.status_code == 400
        r, _ = await _authorize(client, challenge, code_challenge_method="plain")
        assert r.status_code == 400
        r, _ = await _authorize(client, challenge, redirect_uri="https://evil.example/cb")
        assert r.status_code == 400 and "evil" not in r.headers.get("location", "")


async def test_totp_is_required_outside_demo_for_operational_roles(make_app):
    app = make_app(demo=False)
    async with running(app) as client:
        with db.unit_of_work() as session:
            institutions.learn_demo(session, [FGR])  # no demo: nothing seeded it
            user = service.create_user(
                session,
                username="fiscal2",
                display_name="Fiscal Dos",
                password="una-contraseña-larga",
                roles=["prosecutor"],
                institution_id=FGR.id,
                actor=None,
            )
            service.create_client(
                session,
                client_id="web",
                name="Web",
                grant_types=["authorization_code"],
                redirect_uris=[REDIRECT],
                public=True,
            )
        # Not enrolled yet: refused even with the right password.
        _, challenge = pkce_pair()
        page, _ = await _authorize(client, challenge, client_id="web", scope="canaliza")
        form = {**_hidden(page.text), "username": "fiscal2", "password": "una-contraseña-larga"}
        r = await client.post("/auth/authorize", data=form)
        assert r.status_code == 401 and "segundo factor" in r.text

        with db.unit_of_work() as session:
            found = session.get(type(user), user.id)
            assert found is not None
            user = found
            uri = service.start_totp_enrolment(session, user=user)
        secret = parse_qs(urlsplit(uri).query)["secret"][0]
        with db.unit_of_work() as session:
            found = session.get(type(user), user.id)
            assert found is not None
            user = found
            service.confirm_totp_enrolment(session, user=user, code=pyotp.TOTP(secret).now())
        assert "auth.mfa.enrolled" in event_types()

        r = await client.post("/auth/authorize", data=form)
        assert r.status_code == 200 and 'name="totp"' in r.text
        r = await client.post("/auth/authorize", data={**form, "totp": "000000"})
        assert r.status_code == 401 and "no es válido" in r.text
        r = await client.post("/auth/authorize", data={**form, "totp": pyotp.TOTP(secret).now()})
        assert r.status_code == 302 and "code=" in r.headers["location"]
    with Session(db.engine) as s:
        assert s.get(OAuthClient, "web") is not None


async def test_mfa_enrolment_endpoints(make_app):
    async with running(make_app()) as client:
        token = (await client.post("/auth/token", data=password_form("inm"))).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        r = await client.post("/auth/mfa/enroll", headers=headers)
        assert r.status_code == 200
        secret = parse_qs(urlsplit(r.json()["otpauth_uri"]).query)["secret"][0]
        r = await client.post("/auth/mfa/confirm", json={"code": "123456"}, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_totp"
        r = await client.post(
            "/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=headers
        )
        assert r.status_code == 200 and r.json() == {"mfa_enrolled": True}
    assert events("auth.mfa.enrolled")[0]["actor"]


async def test_a_reset_password_is_temporary_until_replaced_at_sign_in(make_app):
    """Issue 19: an administrator's reset gives a one-time password. It never yields a token
    by itself; the sign-in form asks for a new one, and only that one works afterwards."""
    async with running(make_app()) as client:
        admin = await client.post("/auth/token", data=password_form("admin"))
        headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        users = (await client.get("/api/v1/auth/users", headers=headers)).json()
        fiscal = next(u for u in users if u["username"] == "fiscal")
        reset = await client.post(
            f"/api/v1/auth/users/{fiscal['id']}/password-reset", headers=headers
        )
        assert reset.status_code == 200, reset.text
        temporary = reset.json()["temporary_password"]

        refused = await client.post("/auth/token", data=password_form("fiscal", temporary))
        assert refused.status_code == 400
        assert refused.json()["error_description"] == "password_change_required"
        assert "temporal" in refused.json()["detail"]
        # a wrong password still gets the generic answer (no oracle of a pending change)
        wrong = await client.post("/auth/token", data=password_form("fiscal", "no-es-esta"))
        assert wrong.json()["error_description"] == "invalid_credentials"

        _, challenge = pkce_pair()
        page, _ = await _authorize(client, challenge)
        form = {**_hidden(page.text), "username": "fiscal", "password": temporary}
        asked = await client.post("/auth/authorize", data=form)
        assert asked.status_code == 200, asked.text
        assert 'name="new_password"' in asked.text and "Contraseña temporal" in asked.text
        new = "una-contraseña-nueva-2026"
        for bad, why in (
            ({"new_password": "corta", "new_password_again": "corta"}, "entre 12 y 200"),
            ({"new_password": new, "new_password_again": new + "x"}, "no coinciden"),
            ({"new_password": temporary, "new_password_again": temporary}, "distinta"),
        ):
            page, _ = await _authorize(client, challenge)
            r = await client.post(
                "/auth/authorize",
                data={**_hidden(page.text), "username": "fiscal", "password": temporary, **bad},
            )
            assert r.status_code == 422 and why in r.text, why
            assert 'name="new_password"' in r.text
        page, _ = await _authorize(client, challenge)
        done = await client.post(
            "/auth/authorize",
            data={**_hidden(page.text), "username": "fiscal", "password": temporary,
                  "new_password": new, "new_password_again": new},
        )  # fmt: skip
        assert done.status_code == 302, done.text
        assert "code" in parse_qs(urlsplit(done.headers["location"]).query)

        assert (
            await client.post("/auth/token", data=password_form("fiscal", new))
        ).status_code == 200
        old = await client.post("/auth/token", data=password_form("fiscal", temporary))
        assert old.json()["error_description"] == "invalid_credentials"
        # the next sign-in is an ordinary one: no new password asked
        page, _ = await _authorize(client, challenge)
        again = await client.post(
            "/auth/authorize",
            data={**_hidden(page.text), "username": "fiscal", "password": new},
        )
        assert again.status_code == 302
    with Session(db.engine) as session:
        user = service.find_user(session, "fiscal")
        assert user is not None and user.password_change_required is False
