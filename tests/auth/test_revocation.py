"""A revoked access token stops working in every service, not only at introspection.

The auth service and the capacity service run as two apps (as two processes would) on
one bus: the revocation event reaches capacity's deny-list, which refuses the token on
HTTP and on the live WebSocket until the token would have expired anyway.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

import pytest

from auth import main as auth_main
from auth.database import db as auth_db
from capacity import main as capacity_main
from capacity.database import db as capacity_db
from services.app import Runtime, ServiceSpec, create_app
from services.bus import InProcessBus
from services.clock import clock
from services.settings import get_settings
from services.tokens import RevocationList
from tests.auth.conftest import password_form, websocket_first_reply
from tests.conftest import running
from tests.kernel import sample


def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _jti(token: str) -> str:
    return str(_claims(token)["jti"])


async def _learned(runtime: Runtime, jti: str) -> bool:
    """Let the bus deliver (the relay is drained first; this only yields to its tasks)."""
    for _ in range(500):
        if runtime.revocations.is_revoked(jti):
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.fixture
def two_services(tmp_path, monkeypatch):
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    auth_db.configure(f"sqlite:///{tmp_path}/auth.db")
    capacity_db.configure(f"sqlite:///{tmp_path}/capacity.db")
    bus = InProcessBus()
    # The auth app installs the verifier (its JWKS in-process); capacity's keeps it.
    auth_app = create_app([auth_main.service()], bus=bus)
    capacity_app = create_app([capacity_main.service()], bus=bus)
    yield auth_app, capacity_app, bus
    auth_db.dispose()
    capacity_db.dispose()


async def test_revoked_access_token_is_refused_by_another_service(two_services):
    auth_app, capacity_app, bus = two_services
    async with running(auth_app) as auth, running(capacity_app) as capacity:
        issued = (await auth.post("/auth/token", data=password_form("fiscal"))).json()
        token = issued["access_token"]
        other = (await auth.post("/auth/token", data=password_form("fiscal"))).json()
        headers = {"Authorization": f"Bearer {token}"}
        assert (await capacity.get("/api/v1/capacity/ping", headers=headers)).status_code == 200

        r = await auth.post("/auth/revoke", data={"token": token, "client_id": "canaliza-cli"})
        assert r.status_code == 200
        await auth_app.state.runtime.relays["auth"].drain()
        assert await _learned(capacity_app.state.runtime, _jti(token))

        r = await capacity.get("/api/v1/capacity/ping", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"] == "token_revoked" and r.json()["detail"]
        reply = await websocket_first_reply(capacity_app, "/api/v1/capacity/live", token)
        assert reply["close"] == 4401 and reply["message"]["error"] == "token_revoked"
        # Only that token: another one of the same person still works.
        r = await capacity.get(
            "/api/v1/capacity/ping",
            headers={"Authorization": f"Bearer {other['access_token']}"},
        )
        assert r.status_code == 200

        # A service started after the revocation learns it from the stream.
        late = create_app([ServiceSpec(name="sample", routers=[sample.router])], bus=bus)
        async with running(late) as late_client:
            assert await _learned(late.state.runtime, _jti(token))
            r = await late_client.get("/api/v1/sample/whoami", headers=headers)
            assert r.status_code == 401 and r.json()["error"] == "token_revoked"


async def test_refresh_reuse_revokes_the_familys_access_tokens_everywhere(two_services):
    auth_app, capacity_app, _ = two_services
    async with running(auth_app) as auth, running(capacity_app) as capacity:
        first = (await auth.post("/auth/token", data=password_form("coordinadora"))).json()
        form = {"grant_type": "refresh_token", "client_id": "canaliza-cli"}
        r = await auth.post("/auth/token", data={**form, "refresh_token": first["refresh_token"]})
        second = r.json()
        sid = _claims(first["access_token"])["sid"]
        assert _claims(second["access_token"])["sid"] == sid  # rotation keeps the family
        stranger = (await auth.post("/auth/token", data=password_form("coordinadora"))).json()
        assert _claims(stranger["access_token"])["sid"] != sid  # another sign-in, another
        for token in (first, second, stranger):
            h = {"Authorization": f"Bearer {token['access_token']}"}
            assert (await capacity.get("/api/v1/capacity/ping", headers=h)).status_code == 200

        # The rotated refresh token shows up again: the family is revoked, and with it
        # every access token issued from it, in every service.
        r = await auth.post("/auth/token", data={**form, "refresh_token": first["refresh_token"]})
        assert r.status_code == 400
        await auth_app.state.runtime.relays["auth"].drain()
        runtime = capacity_app.state.runtime
        for _ in range(500):
            if runtime.revocations.is_revoked(None, sid):
                break
            await asyncio.sleep(0.01)
        for token, status in ((first, 401), (second, 401), (stranger, 200)):
            h = {"Authorization": f"Bearer {token['access_token']}"}
            r = await capacity.get("/api/v1/capacity/ping", headers=h)
            assert r.status_code == status, r.text


def test_deny_list_forgets_a_token_once_it_has_expired():
    clock.freeze()
    now = int(clock.now().timestamp())
    denied = RevocationList()
    denied.add("a", now + 900)
    denied.add("gone", now - 3600)  # already expired: never kept
    assert denied.is_revoked("a") and not denied.is_revoked("gone") and len(denied) == 1
    assert not denied.is_revoked(None) and not denied.is_revoked("b")
    clock.advance(timedelta(seconds=900 + 31))
    assert not denied.is_revoked("a")
    clock.advance(timedelta(seconds=60))
    denied.add("b", now + 10_000)  # adding purges what has expired
    assert len(denied) == 1
    denied.add_family("family-1", now + 20_000)
    assert denied.is_revoked("other-jti", "family-1") and not denied.is_revoked("x", "family-2")
