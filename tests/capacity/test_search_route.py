"""The search route's short path answers exactly as FastAPI's standard handler does.

Each request below is sent to the capacity app (whose search route is
``capacity.search_route.SearchRoute``) and to a reference app serving the same endpoint
through a plain ``APIRoute``; status, error body and answer must be the same.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from capacity import router as capacity_router
from capacity import search_route
from capacity.main import service
from capacity.schemas import SearchAnswer
from services.app import create_app
from services.bus import InProcessBus
from tests.conftest import running

URL = "/api/v1/availability/search"
JSON = {"content-type": "application/json"}
MOTHER = {"sex": "F", "age": 31, "role": "victim"}
SON = {"sex": "M", "age": 4, "role": "accompanying_child"}

BAD_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("empty", b"", JSON),
    ("not_json", b"{people: [", JSON),
    ("invalid_utf8", b'{"people": "\xff\xfe"}', JSON),
    ("deep_json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON),
    ("array", b"[]", JSON),
    ("string", b'"people"', JSON),
    ("null", b"null", JSON),
    ("missing_people", b"{}", JSON),
    ("people_null", b'{"people": null}', JSON),
    ("people_empty", b'{"people": []}', JSON),
    ("too_many_people", json.dumps({"people": [MOTHER] * 21}).encode(), JSON),
    ("unknown_field", json.dumps({"people": [MOTHER], "beds": 2}).encode(), JSON),
    ("age_as_text", b'{"people": [{"sex": "F", "age": "31", "role": "victim"}]}', JSON),
    ("age_negative", b'{"people": [{"sex": "F", "age": -1, "role": "victim"}]}', JSON),
    ("age_huge", b'{"people": [{"sex": "F", "age": 1' + b"0" * 40 + b', "role": "victim"}]}', JSON),
    ("age_nan", b'{"people": [{"sex": "F", "age": NaN, "role": "victim"}]}', JSON),
    ("bad_sex", b'{"people": [{"sex": "W", "age": 31, "role": "victim"}]}', JSON),
    ("bad_role", b'{"people": [{"sex": "F", "age": 31, "role": "boss"}]}', JSON),
    ("bad_state", json.dumps({"people": [MOTHER], "state": "99"}).encode(), JSON),
    ("limit_zero", json.dumps({"people": [MOTHER], "limit": 0}).encode(), JSON),
    ("limit_bool", json.dumps({"people": [MOTHER], "limit": True}).encode(), JSON),
    ("needs_unknown", json.dumps({"people": [MOTHER], "needs": {"spa": True}}).encode(), JSON),
    ("needs_list", json.dumps({"people": [MOTHER], "needs": []}).encode(), JSON),
    ("control_char", json.dumps({"people": [MOTHER], "intent_key": "a\u0000b"}).encode(), JSON),
    ("text_plain", json.dumps({"people": [MOTHER]}).encode(), {"content-type": "text/plain"}),
    ("no_content_type", json.dumps({"people": [MOTHER]}).encode(), {}),
]

GOOD_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("family", json.dumps({"people": [MOTHER, SON], "state": "09"}).encode(), JSON),
    (
        "optional_nulls",
        json.dumps({"people": [MOTHER], "needs": None, "state": None}).encode(),
        JSON,
    ),
    (
        "charset",
        json.dumps({"people": [MOTHER]}).encode(),
        {"content-type": "application/json; charset=utf-8"},
    ),
    (
        "vendor_json",
        json.dumps({"people": [MOTHER]}).encode(),
        {"content-type": "application/vnd.api+json"},
    ),
    (
        "nobody_fits",
        json.dumps({"people": [{"sex": "M", "age": 40, "role": "victim"}]}).encode(),
        JSON,
    ),
]


def _reference_app() -> Any:
    """The capacity app with the search endpoint behind FastAPI's standard route only."""
    plain = APIRouter(prefix="/api/v1", tags=["capacity"])
    plain.add_api_route(
        URL.removeprefix("/api/v1"),
        capacity_router.search,
        methods=["POST"],
        response_model=SearchAnswer,
        route_class_override=APIRoute,
    )
    spec = service()
    spec.routers = [plain]
    return create_app([spec], bus=InProcessBus())


@pytest.fixture
async def reference_app() -> Any:
    return _reference_app()


@pytest.fixture
async def both(cap, reference_app) -> AsyncIterator[tuple[Any, Any]]:
    fac = await cap.facility()
    await cap.pool(fac["id"], total=5)
    async with running(reference_app) as reference:
        yield cap.client, reference


async def _post_both(both: tuple[Any, Any], body: bytes, headers: dict[str, str]) -> Any:
    """The same request to the capacity app and to the reference app: (new, old)."""
    client, reference = both
    new = await client.post(URL, content=body, headers=headers)
    old = await reference.post(URL, content=body, headers=headers)
    return new, old


def _answer(resp: Any) -> tuple[int, Any]:
    body = resp.json()
    if isinstance(body, dict) and isinstance(body.get("unmet"), dict):
        body["unmet"].pop("unmet_id", None)  # one unmet row per request, each its own id
    return resp.status_code, body


@pytest.mark.parametrize(("name", "body", "headers"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_a_bad_body_gets_the_standard_routes_answer(both, cap, name, body, headers):
    new, old = await _post_both(both, body, {**cap.prosecutor(), **headers})
    assert 400 <= new.status_code < 500, new.text
    assert _answer(new) == _answer(old)
    assert set(new.json()) >= {"error", "detail"}
    assert body not in search_route._bodies


@pytest.mark.parametrize(("name", "body", "headers"), GOOD_BODIES, ids=[g[0] for g in GOOD_BODIES])
async def test_a_good_body_gets_the_same_answer(both, cap, name, body, headers):
    new, old = await _post_both(both, body, {**cap.prosecutor(), **headers})
    assert new.status_code == 200, new.text
    assert _answer(new) == _answer(old)
    assert new.headers["content-type"] == old.headers["content-type"]


@pytest.mark.parametrize(
    "who",
    ["no_token", "bad_token", "observer", "segob_auditor", "institution_admin", "revoked"],
)
@pytest.mark.parametrize("body", [GOOD_BODIES[0][1], b'{"people": []}', b"{nope"])
async def test_authentication_and_roles_are_checked_as_before(
    both, cap, capacity_app, reference_app, who, body
):
    if who == "no_token":
        auth: dict[str, str] = {}
    elif who == "bad_token":
        auth = {"Authorization": "Bearer not-a-token"}
    elif who == "revoked":
        auth = cap.prosecutor()
        token = auth["Authorization"].split()[1]
        claims = json.loads(_b64(token.split(".")[1]))
        for app in (capacity_app, reference_app):
            app.state.runtime.revocations.add(claims["jti"], claims["exp"])
    else:
        auth = cap.headers(who, institution_id="inst-1")
    new, old = await _post_both(both, body, {**auth, **JSON})
    assert new.status_code in (401, 403, 422), new.text
    assert _answer(new) == _answer(old)
    assert new.headers.get("www-authenticate") == old.headers.get("www-authenticate")


async def test_a_good_body_is_validated_once_and_remembered(both, cap):
    client, _ = both
    body = json.dumps({"people": [MOTHER], "state": "15", "limit": 3}).encode()
    search_route._bodies.pop(body, None)
    first = await client.post(URL, content=body, headers={**cap.prosecutor(), **JSON})
    assert first.status_code == 200
    remembered = search_route._bodies[body]
    again = await client.post(URL, content=body, headers={**cap.prosecutor(), **JSON})
    assert again.json() == first.json()
    assert search_route._bodies[body] is remembered


async def test_the_body_memo_is_bounded(both, cap, monkeypatch):
    client, _ = both
    monkeypatch.setattr(search_route, "BODY_MEMO", 3)
    bodies = [json.dumps({"people": [MOTHER], "limit": n}).encode() for n in range(1, 6)]
    for body in bodies:
        r = await client.post(URL, content=body, headers={**cap.prosecutor(), **JSON})
        assert r.status_code == 200
    assert len(search_route._bodies) <= 3
    assert bodies[-1] in search_route._bodies and bodies[0] not in search_route._bodies


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
