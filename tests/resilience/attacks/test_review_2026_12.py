"""Review of 2026-12 (issue 20), item 9 (Low): one regression test per finding.

See ``docs/security/threat-model.md`` ("Review of 2026-12 — input bounds, oracles,
lockout, logs, origin") for the attack, the fix and which test covers it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from canaliza.demo import CASA_MERCEDES, FGR
from tests.resilience.attacks.test_asvs import _other_ngo_coordinator
from tests.resilience.attacks.test_leaks import Session, _lifecycle
from tests.resilience.conftest import (
    DEMO_USERNAMES,
    _configure_databases,
    _dispose_databases,
    password_grant_form,
)

HUGE = "99999999999999999999"


@pytest.fixture
def plain_app(monkeypatch) -> Any:
    """The all-services app in demo mode (demo users and clients, no demo data)."""
    from canaliza.composition import build_app
    from services.settings import get_settings

    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    _configure_databases()
    yield build_app("all")
    _dispose_databases()


def _session(client: TestClient, *roles: str) -> Session:
    s = Session(client)
    for role in roles or DEMO_USERNAMES:
        resp = client.post("/auth/token", data=password_grant_form(role))
        assert resp.status_code == 200, resp.text
        s.tokens[role] = resp.json()["access_token"]
    return s


def _pool_id(s: Session, role: str = "coordinadora") -> str:
    facilities = s.call(role, "GET", "/api/v1/facilities").json()["items"]
    ours = [f for f in facilities if f["operator_institution_id"] == CASA_MERCEDES.id]
    return str(s.call(role, "GET", f"/api/v1/facilities/{ours[0]['id']}/pools").json()[0]["id"])


# --- 1. an offset beyond a 64-bit integer is a 422, never a 500 --------------------------


def test_offsets_out_of_range_are_refused(demo_app) -> None:
    """Checked before any query: the same 422 on SQLite and PostgreSQL (which 500ed on an
    integer it cannot bind)."""
    with TestClient(demo_app) as client:
        s = _session(client, "coordinadora", "admin")
        pool = _pool_id(s)
        for offset in (HUGE, "9223372036854775808", "10000001", "-1"):
            for role, path in (
                ("coordinadora", f"/api/v1/pools/{pool}/ledger"),
                ("admin", "/api/v1/audit/events"),
                ("admin", "/api/v1/facilities"),
            ):
                resp = s.call(role, "GET", path, params={"offset": offset})
                assert resp.status_code == 422, (path, offset, resp.text)
                assert resp.json()["error"] == "validation_error"
        # The largest offset accepted still answers (an empty page).
        resp = s.call("admin", "GET", "/api/v1/audit/events", params={"offset": 10_000_000})
        assert resp.status_code == 200 and resp.json()["items"] == []


# --- 2. a malformed redirect_uri is a 400 page, never a 500 nor a redirect ---------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1\\@evil/callback",
        "http://127.0.0.1\\@evil.example/callback",
        "http://[127.0.0.1/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:x/callback",
        "http://evil.example/callback",
        "http://127.0.0.1@evil.example/callback",
    ],
)
def test_a_malformed_redirect_uri_is_an_error_page(plain_app, redirect_uri) -> None:
    params = {
        "response_type": "code",
        "client_id": "canaliza-cli",
        "redirect_uri": redirect_uri,
        "state": "xyz",
        "scope": "openid",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    with TestClient(plain_app, follow_redirects=False) as client:
        page = client.get("/auth/authorize", params=params)
        assert page.status_code == 400, page.text
        assert "evil" not in page.headers.get("location", "")
        form = {**params, "username": "fiscal", "password": "canaliza-demo", "csrf_token": "c"}
        client.cookies.set("canaliza_csrf", "c")
        sent = client.post("/auth/authorize", data=form)
        assert sent.status_code in (400, 403), sent.text
        assert "evil" not in sent.headers.get("location", "")


# --- 5. a token in a URL never reaches the server's log ---------------------------------


async def test_the_server_log_drops_query_strings(caplog) -> None:
    """A real uvicorn server (access log on, info level) logs a WebSocket and an HTTP
    request made with ``?token=…``: neither line carries the query string."""
    import asyncio
    import threading

    import httpx
    import uvicorn
    import websockets
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from services.observability import configure_logging
    from tests.live.conftest import free_port

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hola")
        await websocket.close()

    async def page(_: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[WebSocketRoute("/live", echo), Route("/page", page)])
    configure_logging("test")
    caplog.set_level(logging.INFO)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="info", access_log=True, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            await asyncio.sleep(0.02)
        secret = "eyJhbGciOiJFUzI1NiJ9.secreto-en-la-url"
        async with websockets.connect(f"ws://127.0.0.1:{port}/live?token={secret}") as ws:
            assert await ws.recv() == "hola"
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"http://127.0.0.1:{port}/page?access_token={secret}")
            assert resp.status_code == 200
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")]
    assert any("WebSocket /live" in line for line in lines), lines
    assert any("/page" in line for line in lines), lines
    assert not [line for line in lines if secret in line or "token=" in line], lines


# --- 9. /live's Origin check does not believe X-Forwarded-Host ---------------------------


def _live_close_code(app: Any, headers: dict[str, str]) -> int:
    from starlette.websockets import WebSocketDisconnect

    with (
        TestClient(app, base_url="http://testserver") as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/live", headers=headers) as ws,
    ):
        ws.receive_text()
    return closed.value.code


FORGED = {
    "origin": "https://evil.example",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "https",
}


def test_live_refuses_a_forged_forwarded_host(plain_app, monkeypatch) -> None:
    # 4403: the Origin is refused (before, the forged header made it "same origin" and the
    # socket went on to the session check, 4401).
    assert _live_close_code(plain_app, FORGED) == 4403
    assert _live_close_code(plain_app, {"origin": "http://testserver"}) == 4401
    # Behind a proxy that overwrites the header, a setting says to believe it.
    from canaliza.composition import build_app
    from services.settings import get_settings

    monkeypatch.setenv("CANALIZA_TRUST_FORWARDED_HOST", "1")
    get_settings.cache_clear()
    assert _live_close_code(build_app("all"), FORGED) == 4401


# --- 3, 6, 7, 8: one demo session with an accepted referral ------------------------------

BIDI_AND_NUL = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2069", "\x00"]
ACTIONS = ("send", "accept", "decline", "cancel", "admit", "discharge")


def _same_answer(a: Any, b: Any, rid: str, other: str) -> None:
    assert a.status_code == b.status_code == 404, (a.request.url, a.text, b.text)
    assert a.json()["error"] == b.json()["error"] == "referral_not_found", (a.text, b.text)
    assert a.json()["detail"].replace(rid, "X") == b.json()["detail"].replace(other, "X")


def _draft(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sending_institution_id": FGR.id,
        "receiving_institution_id": CASA_MERCEDES.id,
        "facility_id": over.pop("facility_id"),
        "people": [{"sex": "F", "age": 30, "role": "victim", "nationality": "MEX"}],
        "consent": {"given": True},
        "urgency": "normal",
    }
    body.update(over)
    return body


def test_referral_oracles_references_types_and_text(demo_app) -> None:
    with TestClient(demo_app) as client:
        s = _session(client)
        rid, _hold = _lifecycle(s)
        facility_id = s.call("fiscal", "GET", f"/api/v1/referrals/{rid}").json()["facility_id"]
        _other_ngo_coordinator(s)
        nobody = "00000000-0000-4000-8000-000000000000"

        # 3. a caller who may not see the referral: one answer, existing or not.
        for role in ("otra", "inm"):  # (DIF of Mexico City has an obligation: it sees it)
            for suffix in ("identities", "facility-address", "escalations", ""):
                path = f"/api/v1/referrals/{{}}/{suffix}".rstrip("/")
                a = s.call(role, "GET", path.format(rid))
                b = s.call(role, "GET", path.format(nobody))
                _same_answer(a, b, rid, nobody)
            for action in ACTIONS:
                a = s.call(role, "POST", f"/api/v1/referrals/{rid}/{action}", json={})
                b = s.call(role, "POST", f"/api/v1/referrals/{nobody}/{action}", json={})
                _same_answer(a, b, rid, nobody)
            a = s.call(role, "POST", f"/api/v1/referrals/{rid}/obligations/{nobody}/fulfil")
            b = s.call(role, "POST", f"/api/v1/referrals/{nobody}/obligations/{nobody}/fulfil")
            _same_answer(a, b, rid, nobody)
        # ...while the receiver still learns the names and the sender the address.
        assert (
            s.call("coordinadora", "GET", f"/api/v1/referrals/{rid}/identities").status_code == 200
        )
        assert (
            s.call("fiscal", "GET", f"/api/v1/referrals/{rid}/facility-address").status_code == 200
        )

        before = len(s.call("fiscal", "GET", "/api/v1/referrals").json())

        # 6. a draft naming a facility or a hold that does not exist: 422, nothing written.
        resp = s.call("fiscal", "POST", "/api/v1/referrals", json=_draft(facility_id=nobody))
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"] == "facility_not_found"
        assert "No existe la instalación" in resp.json()["detail"]
        resp = s.call(
            "fiscal",
            "POST",
            "/api/v1/referrals",
            json=_draft(facility_id=facility_id, hold_id=nobody),
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"] == "hold_not_found"
        assert "No existe la reserva" in resp.json()["detail"]

        # 7. numbers and booleans as sent, never coerced.
        search = "/api/v1/availability/search"
        for age in (True, "30", 30.0, "treinta"):
            person = {"sex": "F", "age": age, "role": "victim"}
            resp = s.call("fiscal", "POST", search, json={"people": [person]})
            assert resp.status_code == 422, (age, resp.text)
            assert resp.json()["error"] == "validation_error"
            body = _draft(facility_id=facility_id)
            body["people"][0]["age"] = age
            resp = s.call("fiscal", "POST", "/api/v1/referrals", json=body)
            assert resp.status_code == 422, (age, resp.text)
        people = [{"sex": "F", "age": 30, "role": "victim"}]
        assert s.call("fiscal", "POST", search, json={"people": people}).status_code == 200
        pool = _pool_id(s)
        wrong_types: list[tuple[str, str, str, dict[str, Any]]] = [
            ("fiscal", "POST", search, {"people": people, "needs": {"wheelchair": "true"}}),
            ("fiscal", "POST", search, {"people": people, "limit": "5"}),
            ("fiscal", "POST", "/api/v1/holds", {"allocations": [{"pool_id": pool, "beds": "1"}]}),
            ("fiscal", "POST", "/api/v1/holds", {"allocations": [{"pool_id": pool, "beds": True}]}),
            (
                "coordinadora",
                "POST",
                f"/api/v1/pools/{pool}/ledger",
                {"kind": "admit", "beds": "1", "reason": "ingreso de prueba"},
            ),
            (
                "coordinadora",
                "PATCH",
                f"/api/v1/pools/{pool}",
                {"accepts_children": 1},
            ),
            (
                "fiscal",
                "POST",
                "/api/v1/referrals",
                _draft(facility_id=facility_id, consent={"given": "true"}),
            ),
            (
                "fiscal",
                "POST",
                "/api/v1/referrals",
                _draft(facility_id=facility_id, witness_protection=0),
            ),
        ]
        for role, method, path, body in wrong_types:
            resp = s.call(role, method, path, json=body)
            assert resp.status_code == 422, (path, body, resp.text)

        # 8. NUL and the bidirectional controls in names and free text.
        for char in BIDI_AND_NUL:
            evil = f"Ana{char}Pérez"
            cases: list[tuple[str, str, str, dict[str, Any]]] = [
                (
                    "fiscal",
                    "POST",
                    "/api/v1/referrals",
                    _draft(
                        facility_id=facility_id,
                        people=[
                            {
                                "sex": "F",
                                "age": 30,
                                "role": "victim",
                                "nationality": "MEX",
                                "name": evil,
                            }
                        ],
                    ),
                ),
                (
                    "fiscal",
                    "POST",
                    "/api/v1/referrals",
                    _draft(facility_id=facility_id, case_reference=f"FED/{char}/2026"),
                ),
                (
                    "coordinadora",
                    "POST",
                    f"/api/v1/pools/{pool}/ledger",
                    {"kind": "admit", "beds": 1, "reason": f"motivo {char} falso"},
                ),
                (
                    "admin",
                    "POST",
                    "/api/v1/institutions",
                    {"name": evil, "type": "ngo", "state": "09"},
                ),
                ("fiscal", "POST", f"/api/v1/referrals/{rid}/cancel", {"reason": evil}),
            ]
            for role, method, path, body in cases:
                resp = s.call(role, method, path, json=body)
                assert resp.status_code == 422, (char, path, resp.text)
                assert "carácter no permitido" in resp.json()["detail"], resp.text
        # Accents, ñ and line breaks in free text are still text.
        resp = s.call(
            "coordinadora",
            "POST",
            f"/api/v1/pools/{pool}/ledger",
            json={"kind": "admit", "beds": 1, "reason": "Ingresó Begoña\nañadido"},
        )
        assert resp.status_code == 201, resp.text
        assert len(s.call("fiscal", "GET", "/api/v1/referrals").json()) == before


# --- 4. lockout reveals nothing and locks out only the guessing address -----------------


def test_lockout_is_no_oracle_and_no_denial_of_service(plain_app) -> None:
    from services.clock import clock

    clock.freeze()
    try:
        with (
            TestClient(plain_app, client=("203.0.113.9", 5000)) as attacker,
            TestClient(plain_app, client=("198.51.100.7", 5000)) as victim,
        ):

            def attempt(c: TestClient, user: str, password: str) -> Any:
                form = {**password_grant_form(user), "password": password}
                return c.post("/auth/token", data=form)

            unknown = attempt(attacker, "no-existe-nadie", "adivinanza")
            for _ in range(8):  # well past the default limit of 5
                wrong = attempt(attacker, "fiscal", "adivinanza")
            locked = attempt(attacker, "fiscal", password_grant_form("fiscal")["password"])
            for resp in (unknown, wrong, locked):
                assert resp.status_code == 400, resp.text
                assert resp.json() == unknown.json(), (resp.json(), unknown.json())
            assert unknown.json()["error_description"] == "invalid_credentials"
            # The real person, from her own address, still signs in.
            assert victim.post("/auth/token", data=password_grant_form("fiscal")).status_code == 200
    finally:
        clock.unfreeze()
