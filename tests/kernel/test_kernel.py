"""The kernel: error model, authentication, one commit point, outbox → bus."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from sqlmodel import Session

from services.app import create_app
from services.bus import InProcessBus, subject_matches
from services.settings import get_settings
from tests.conftest import running
from tests.kernel import sample


@pytest.fixture
def sample_app(test_verifier, tmp_path):
    get_settings().auto_migrate = False
    sample.db.configure(f"sqlite:///{tmp_path}/sample.db")
    sample.create_tables()
    with Session(sample.db.engine) as s:
        s.add(sample.Counter(id=1, value=1))
        s.commit()
    bus = InProcessBus()
    app = create_app([sample.service()], bus=bus)
    yield app, bus
    sample.db.dispose()


async def test_routes_need_a_token_and_errors_have_the_contract_shape(sample_app, auth_headers):
    app, _ = sample_app
    async with running(app) as client:
        r = await client.get("/api/v1/sample/whoami")
        assert r.status_code == 401
        assert set(r.json()) >= {"error", "detail"}
        assert r.headers["www-authenticate"] == "Bearer"
        r = await client.get("/api/v1/sample/whoami", headers=auth_headers("observer"))
        assert r.status_code == 200 and r.json()["roles"] == ["observer"]
        assert (await client.get("/healthz")).status_code == 200
        r = await client.get("/nope", headers=auth_headers("observer"))
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_validation_errors_are_readable_and_unknown_fields_refused(sample_app, auth_headers):
    app, _ = sample_app
    h = auth_headers("prosecutor")
    async with running(app) as client:
        r = await client.post(
            "/api/v1/sample/counters/1/decrement", json={"by": 1, "x": 2}, headers=h
        )
        assert r.status_code == 422
        assert r.json()["error"] == "validation_error"
        assert "x: campo desconocido" in r.json()["detail"]
        r = await client.post(
            "/api/v1/sample/counters/1/decrement",
            content=b"{",
            headers={**h, "content-type": "application/json"},
        )
        assert r.status_code == 422


async def test_role_is_checked(sample_app, auth_headers):
    app, _ = sample_app
    async with running(app) as client:
        r = await client.post(
            "/api/v1/sample/counters/1/decrement", json={"by": 1}, headers=auth_headers("observer")
        )
        assert r.status_code == 403 and r.json()["error"] == "forbidden_role"


async def test_oversized_body_is_refused_before_parsing(sample_app, auth_headers):
    app, _ = sample_app
    async with running(app) as client:
        r = await client.post(
            "/api/v1/sample/counters/1/decrement",
            content=b"[" * (get_settings().max_body_bytes + 10),
            headers={**auth_headers("prosecutor"), "content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


async def test_commit_publishes_once_and_conflict_writes_nothing(sample_app, auth_headers):
    app, bus = sample_app
    seen = []

    async def handler(ev):
        seen.append(ev)

    await bus.subscribe("canaliza.sample.>", handler)
    h = auth_headers("prosecutor")
    async with running(app) as client:
        r1, r2 = await asyncio.gather(
            client.post("/api/v1/sample/counters/1/decrement", json={"by": 1}, headers=h),
            client.post("/api/v1/sample/counters/1/decrement", json={"by": 1}, headers=h),
        )
        assert sorted([r1.status_code, r2.status_code]) == [200, 409]
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert [e.type for e in seen] == ["sample.counter.decremented"]
    assert seen[0].sequence == 1
    with Session(sample.db.engine) as s:
        counter = s.get(sample.Counter, 1)
        assert counter is not None and counter.value == 0


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "forge",
    [
        "alg_none",
        "hs256_with_public_key",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "unknown_kid",
        "tampered_payload",
        "id_token_type",
    ],
)
async def test_forged_tokens_are_refused(forge, make_token, signing_key, test_verifier):
    from joserfc import jwt
    from joserfc.jwk import OctKey

    from services.errors import Unauthorized

    good = make_token("platform_admin")
    token = {
        "alg_none": lambda: (
            _b64({"alg": "none", "typ": "at+jwt", "kid": "test-key-1"})
            + "."
            + good.split(".")[1]
            + "."
        ),
        "hs256_with_public_key": lambda: jwt.encode(
            {"alg": "HS256", "typ": "at+jwt", "kid": "test-key-1"},
            {"sub": "x", "iss": test_verifier.issuer, "aud": "canaliza", "exp": 2**40},
            OctKey.import_key(json.dumps(signing_key.as_dict(private=False)).encode()),
        ),
        "expired": lambda: make_token("platform_admin", ttl=-120),
        "not_yet_valid": lambda: make_token("platform_admin", nbf=2**40),
        "wrong_issuer": lambda: make_token("platform_admin", iss="https://evil.example"),
        "wrong_audience": lambda: make_token("platform_admin", aud="other"),
        "unknown_kid": lambda: make_token("platform_admin", header={"kid": "nope"}),
        "tampered_payload": lambda: (
            good.split(".")[0]
            + "."
            + _b64(
                {**json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "==")), "roles": ["x"]}
            )
            + "."
            + good.split(".")[2]
        ),
        "id_token_type": lambda: make_token("platform_admin", header={"typ": "JWT"}),
    }[forge]()
    with pytest.raises(Unauthorized):
        await test_verifier.verify(token)
    assert (await test_verifier.verify(good)).roles == {"platform_admin"}


def test_subject_matching():
    assert subject_matches("canaliza.capacity.>", "canaliza.capacity.pool.changed")
    assert subject_matches("canaliza.*.pool.changed", "canaliza.capacity.pool.changed")
    assert not subject_matches("canaliza.referral.>", "canaliza.capacity.pool.changed")
    assert not subject_matches("canaliza.capacity", "canaliza.capacity.pool")


async def test_inprocess_bus_dedupes_and_replays():
    from services.events import Event

    bus = InProcessBus()
    ev = Event(type="x.y.z", aggregate_type="y", aggregate_id="1")
    assert await bus.publish(ev) == 1
    assert await bus.publish(ev) == 1
    await bus.publish(Event(type="x.y.z", aggregate_type="y", aggregate_id="2"))
    got = []

    async def h(e):
        got.append(e.aggregate_id)

    sub = await bus.subscribe("canaliza.x.>", h, deliver_from=2)
    await asyncio.sleep(0.01)
    await sub.close()
    assert got == ["2"]
