"""Federation against a real OpenID provider: a second Canaliza auth server (uvicorn).

The provider runs in its own process with its own SQLite database, as an institution's
IdP would; Canaliza (in-process) federates to it with Authlib's Starlette client. The
browser is an httpx client carrying cookies for both hosts and following each redirect
by hand, posting the provider's real sign-in form. No part of Authlib is mocked.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from auth import service
from auth.federation import FederationConfigError, load_providers, map_roles
from auth.models import metadata
from canaliza.demo import FGR
from services.db import ServiceDatabase
from services.settings import ROOT
from tests.auth.conftest import events, pkce_pair
from tests.conftest import running

IDP_CLIENT_SECRET = "secreto-del-cliente-de-federacion"
PASSWORD = "clave-institucional-1"
CALLBACK = "http://testserver/auth/federation/fgr/callback"
CLIENT_REDIRECT = "http://127.0.0.1/callback"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def idp(tmp_path) -> Iterator[str]:
    """An institution's OIDC provider: Canaliza's auth service alone, in its own process."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path}/idp/auth.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANALIZA_")}
    env.update(
        CANALIZA_SERVE="auth",
        CANALIZA_DEMO="1",  # the provider's own staff have no TOTP in this test
        CANALIZA_PUBLIC_URL=url,
        CANALIZA_DATA_DIR=str(tmp_path / "idp"),
        CANALIZA_AUTH_DATABASE_URL=database_url,
        PYTHONPATH=str(ROOT),
    )
    log = (tmp_path / "idp.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "canaliza.launcher:app_all"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):  # wait for start-up (bounded; no timing is asserted)
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        if proc.poll() is not None or httpx.get(f"{url}/healthz").status_code != 200:
            pytest.fail("the provider did not start:\n" + (tmp_path / "idp.log").read_text())
        idp_db = ServiceDatabase("auth", metadata)
        idp_db.configure(database_url)  # migrated by the provider at start-up
        with idp_db.unit_of_work() as session:
            service.create_client(
                session,
                client_id="canaliza-federation",
                name="Canaliza (federación)",
                grant_types=["authorization_code"],
                redirect_uris=[CALLBACK],
                secret=IDP_CLIENT_SECRET,
            )
            for username, role in (
                ("ana.lopez@fgr.example", "prosecutor"),
                ("intruso@otro.example", "prosecutor"),
                ("sin.rol@fgr.example", "observer"),
            ):
                service.create_user(
                    session,
                    username=username,
                    display_name=username.split("@")[0],
                    password=PASSWORD,
                    roles=[role],
                    institution_id=None,
                    actor=None,
                )
        idp_db.dispose()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def federating_app(make_app, idp, tmp_path, monkeypatch):
    config = tmp_path / "federation.yaml"
    config.write_text(
        f"""
providers:
  - key: fgr
    name: FGR (cuenta institucional)
    institution_id: {FGR.id}
    discovery_url: {idp}/.well-known/openid-configuration
    client_id: canaliza-federation
    client_secret_env: TEST_FGR_IDP_SECRET
    scope: openid profile canaliza
    roles_claim: roles
    role_map:
      prosecutor: prosecutor
      institution_admin: institution_admin
    domain_claim: preferred_username
    allowed_domains: [fgr.example]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("TEST_FGR_IDP_SECRET", IDP_CLIENT_SECRET)
    return make_app(demo=True, CANALIZA_AUTH_FEDERATION_FILE=str(config))


def _browser(app: Any) -> httpx.AsyncClient:
    """Cookies for both hosts; Canaliza in-process, the provider over the network."""
    return httpx.AsyncClient(mounts={"http://testserver": httpx.ASGITransport(app=app)}, timeout=30)


async def _follow(browser: httpx.AsyncClient, r: httpx.Response) -> httpx.Response:
    """Follow redirects until an answer, or until the Canaliza client's redirect URI."""
    for _ in range(10):
        location = r.headers.get("location")
        if r.status_code not in (302, 303, 307) or not location:
            return r
        if location.startswith(CLIENT_REDIRECT):
            return r
        r = await browser.get(location)
    raise AssertionError("too many redirects")


def _form_fields(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {html.unescape(k): html.unescape(v) for k, v in found}


async def _sign_in(
    browser: httpx.AsyncClient, idp: str, username: str
) -> tuple[httpx.Response, str]:
    """From Canaliza's sign-in page, through the provider's form, back to Canaliza."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "canaliza-cli",
        "redirect_uri": CLIENT_REDIRECT,
        "scope": "openid canaliza",
        "state": "estado-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "nonce-1",
    }
    page = await browser.get("http://testserver/auth/authorize", params=params)
    assert page.status_code == 200, page.text
    link = re.search(r'<a class="federated" href="([^"]+)">Entrar con FGR', page.text)
    assert link, page.text
    r = await _follow(browser, await browser.get("http://testserver" + html.unescape(link[1])))
    assert r.status_code == 200 and str(r.url).startswith(idp), (r.status_code, r.url)
    form = {**_form_fields(r.text), "username": username, "password": PASSWORD}
    r = await browser.post(f"{idp}/auth/authorize", data=form)
    assert r.status_code == 302 and r.headers["location"].startswith(CALLBACK), r.text
    return await _follow(browser, r), verifier


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.mark.slow
async def test_staff_sign_in_through_their_institutions_provider(federating_app, idp):
    async with running(federating_app) as canaliza, _browser(federating_app) as browser:
        r, verifier = await _sign_in(browser, idp, "ana.lopez@fgr.example")
        assert r.status_code == 302, r.text
        back = httpx.URL(r.headers["location"])
        assert back.params["state"] == "estado-1"
        token = await canaliza.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": back.params["code"],
                "redirect_uri": CLIENT_REDIRECT,
                "client_id": "canaliza-cli",
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
        claims = _claims(token.json()["access_token"])
        # The provider's role maps onto Canaliza's; the institution is the configured one.
        assert claims["roles"] == ["prosecutor"]
        assert claims["institution_id"] == FGR.id
        assert claims["iss"] == "http://testserver"
        assert claims["preferred_username"].startswith("fgr:")
        assert "id_token" in token.json()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        me = await canaliza.get("/auth/userinfo", headers=headers)
        assert me.status_code == 200 and me.json()["name"] == "ana.lopez"

        # Refused: a domain the institution did not allow, and a role that maps to nothing.
        for username, why in (
            ("intruso@otro.example", "dominio autorizado"),
            ("sin.rol@fgr.example", "rol reconocido"),
        ):
            r, _ = await _sign_in(browser, idp, username)
            assert r.status_code == 403 and "location" not in r.headers, r.text
            assert why in r.text

        # A callback without the flow's cookie is refused.
        async with _browser(federating_app) as stranger:
            r = await stranger.get(f"{CALLBACK}?code=x&state=y")
            assert r.status_code == 400
    succeeded = [e["payload"] for e in events("auth.login.succeeded")]
    assert succeeded == [{"federated": "fgr", "mfa": False, "roles": ["prosecutor"]}]
    reasons = [e["payload"]["reason"] for e in events("auth.login.failed")]
    assert reasons == ["federation_domain_not_allowed", "federation_no_mapped_role"]


def test_configuration_is_checked_at_start_up(tmp_path):
    path = tmp_path / "f.yaml"
    base = (
        "providers:\n  - key: fgr\n    institution_id: x\n    discovery_url: http://idp\n"
        "    client_id: c\n    client_secret: s\n"
    )
    path.write_text(base + "    role_map: {admins: platform_admin}\n")
    with pytest.raises(FederationConfigError, match="platform_admin"):
        load_providers(path)
    path.write_text(base + "    scope: profile\n")
    with pytest.raises(FederationConfigError, match="openid"):
        load_providers(path)
    path.write_text(base + "    roles_claim: realm_access.roles\n    role_map: {mp: prosecutor}\n")
    provider = load_providers(path)["fgr"]
    claims = {"realm_access": {"roles": ["mp", "other", "platform_admin"]}}
    assert map_roles(provider, claims) == ["prosecutor"]
    assert load_providers(None) == {}
