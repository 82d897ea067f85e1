"""Shared fixtures and helpers: isolated settings, test-signed tokens, migrated SQLite
templates, real PostgreSQL and NATS.

Tests about PostgreSQL or NATS use the machine's servers. Outside CI a missing server (or
binary, or browser) skips those tests; with ``CI=true`` it fails them, because there they
must run (:func:`unavailable`, the one place that decides).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import MetaData

from services import security
from services.clock import clock
from services.db import ServiceDatabase, alembic_config
from services.settings import get_settings
from services.tokens import StaticKeySource, TokenVerifier

TEST_KID = "test-key-1"
PG_ADMIN_URL = os.environ.get(
    "CANALIZA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("CANALIZA_TEST_NATS", "nats://127.0.0.1:4222")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """What a test does without a server, binary or browser it needs: skip it locally,
    fail it on CI (where it must run)."""
    if ON_CI:
        pytest.fail(message + " (on CI this test must run)")
    pytest.skip(message)


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (on CI) when a real server the test needs is down."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError:
        unavailable(f"{name} is not reachable at {host}:{port}")


def migrate_template(
    tmp_path_factory: pytest.TempPathFactory, service: str, metadata: MetaData
) -> str:
    """A SQLite file with ``service``'s migrations applied, for a session-scoped fixture:
    migrate once, every test copies it (fast, and still built by the migrations)."""
    path = tmp_path_factory.mktemp(f"{service}-template") / f"{service}.db"
    command.upgrade(alembic_config(service, f"sqlite:///{path}", metadata), "head")
    return str(path)


@contextlib.contextmanager
def database_copy(template: str, tmp_path: Path, db: ServiceDatabase) -> Iterator[str]:
    """``db`` configured on a fresh copy of ``template`` (its URL), disposed afterwards."""
    target = tmp_path / Path(template).name
    shutil.copy(template, target)
    url = f"sqlite:///{target}"
    db.configure(url)
    try:
        yield url
    finally:
        db.dispose()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch) -> Iterator[None]:
    """Every test gets its own data directory and a fresh settings object."""
    monkeypatch.setenv("CANALIZA_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CANALIZA_PUBLIC_URL", "http://testserver")
    for var in list(os.environ):
        if var.endswith("_DATABASE_URL") and var.startswith("CANALIZA_"):
            monkeypatch.delenv(var)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    clock.unfreeze()
    security.configure_verifier(None)


@pytest.fixture(scope="session")
def signing_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": TEST_KID, "alg": "ES256", "use": "sig"})


@pytest.fixture
def test_verifier(signing_key: ECKey) -> TokenVerifier:
    """Install a verifier that trusts the test signing key (tests sign their own tokens)."""
    settings = get_settings()
    verifier = TokenVerifier(
        issuer=settings.token_issuer(),
        audience=settings.audience,
        keys=StaticKeySource(KeySet([signing_key])),
        algorithms=["ES256"],
    )
    security.configure_verifier(verifier)
    return verifier


@pytest.fixture
def make_token(signing_key: ECKey, test_verifier: TokenVerifier) -> Callable[..., str]:
    """Sign an access token: ``make_token("prosecutor", institution_id="...")``."""

    def _make(
        *roles: str,
        institution_id: str | None = None,
        sub: str | None = None,
        ttl: int = 600,
        header: dict[str, Any] | None = None,
        key: Any = None,
        **claims: Any,
    ) -> str:
        now = int(clock.now().timestamp())
        payload = {
            "iss": test_verifier.issuer,
            "aud": test_verifier.audience,
            "sub": sub or f"user-{uuid.uuid4().hex[:8]}",
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "client_id": "canaliza-test",
            "roles": list(roles),
            "institution_id": institution_id,
            **claims,
        }
        hdr = {"alg": "ES256", "typ": "at+jwt", "kid": TEST_KID, **(header or {})}
        return jwt.encode(hdr, payload, key or signing_key)

    return _make


@pytest.fixture
def auth_headers(make_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """``auth_headers("prosecutor", institution_id=...)`` → an Authorization header."""

    def _headers(*roles: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(*roles, **kw)}"}

    return _headers


def demo_password_form(username: str, password: str | None = None) -> dict[str, str]:
    """The contract's demo-mode password grant for ``username`` (CLI client)."""
    return {
        "grant_type": "password",
        "username": username,
        "password": password or get_settings().demo_password,
        "client_id": "canaliza-cli",
    }


async def demo_login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    """Bearer headers for a demo user, from the app's own token endpoint."""
    resp = await client.post("/auth/token", data=demo_password_form(username))
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


@pytest.fixture
def all_services_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The one-process app of every service in demo mode (demo users, password grant), on
    this test's own SQLite files."""
    from canaliza.composition import available_packages, build_app, load_spec

    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    specs = [load_spec(name) for name in available_packages()]
    for spec in specs:
        if spec.database is not None:
            spec.database.configure()
    yield build_app("all")
    for spec in specs:
        if spec.database is not None:
            spec.database.dispose()


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield an httpx client bound to it through ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the machine's server, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"canaliza_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            for _ in range(20):
                try:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    break
                except sa.exc.OperationalError:
                    time.sleep(0.2)
        admin.dispose()


@pytest.fixture
def nats_url() -> str:
    """The machine's NATS server (JetStream enabled)."""
    require_service("NATS", "127.0.0.1", 4222)
    return NATS_URL
