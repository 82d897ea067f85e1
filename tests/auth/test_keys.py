"""Issued tokens against the kernel verifier: discovery, JWKS, forgeries, key rotation;
the private keys stored encrypted with the key-encryption key."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from typer.testing import CliRunner

from auth import cli as auth_cli
from auth import main as auth_main
from auth.database import db
from auth.keys import current_key, private_key, rotate_signing_key
from auth.models import SigningKey
from services import security
from services.app import INTERNAL_BASE_URL, ServiceSpec, create_app
from services.at_rest import KeyEncryptionError, keyring, new_kek
from services.clock import clock
from services.errors import Unauthorized
from services.settings import get_settings
from services.tokens import RemoteKeySource
from tests.auth.conftest import password_form
from tests.conftest import running
from tests.kernel import sample


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _verifier_through_jwks(app):
    """The kernel verifier reading the real JWKS endpoint, refetching at once on unknown kid."""
    return security.make_verifier(
        RemoteKeySource(
            f"{INTERNAL_BASE_URL}/auth/jwks",
            transport=httpx.ASGITransport(app=app),
            min_refresh_interval=0,
        )
    )


async def test_issued_token_opens_a_protected_route_of_another_service(make_app):
    async with running(make_app()) as client:
        r = await client.get("/api/v1/sample/whoami")
        assert r.status_code == 401
        token = (await client.post("/auth/token", data=password_form("auditor"))).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        r = await client.get("/api/v1/sample/whoami", headers=headers)
        assert r.status_code == 200
        assert r.json()["roles"] == ["segob_auditor"]
        r = await client.get("/auth/userinfo", headers=headers)
        assert r.status_code == 200
        assert r.json()["preferred_username"] == "auditor"
        assert r.json()["roles"] == ["segob_auditor"]
        assert (await client.get("/auth/userinfo")).status_code == 401


async def test_discovery_and_jwks(make_app):
    async with running(make_app()) as client:
        conf = (await client.get("/.well-known/openid-configuration")).json()
        assert conf["issuer"] == "http://testserver"
        assert conf["jwks_uri"] == "http://testserver/auth/jwks"
        assert conf["token_endpoint"] == "http://testserver/auth/token"
        assert conf["code_challenge_methods_supported"] == ["S256"]
        assert conf["id_token_signing_alg_values_supported"] == ["ES256"]
        assert {"authorization_code", "client_credentials", "refresh_token", "password"} <= set(
            conf["grant_types_supported"]
        )
        for key in ("revocation_endpoint", "introspection_endpoint", "userinfo_endpoint"):
            assert conf[key].startswith("http://testserver/auth/")
        keys = (await client.get("/auth/jwks")).json()["keys"]
        assert len(keys) == 1 and keys[0]["kty"] == "EC" and keys[0]["alg"] == "ES256"
        assert "d" not in keys[0]
        token = (await client.post("/auth/token", data=password_form("inm"))).json()
        header = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[0] + "=="))
        assert header["kid"] == keys[0]["kid"]


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
        "foreign_key_same_kid",
    ],
)
async def test_forged_tokens_are_refused_through_the_real_jwks(make_app, forge):
    app = make_app()
    async with running(app) as client:
        verifier = _verifier_through_jwks(app)
        good = (await client.post("/auth/token", data=password_form("fiscal"))).json()
        good = good["access_token"]
        header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
        claims = _claims(good)
        jwk = (await client.get("/auth/jwks")).json()["keys"][0]
        intruder = ECKey.generate_key("P-256", parameters={"kid": header["kid"]}, private=True)
        with db.unit_of_work() as session:
            key = current_key(session)
            assert key is not None
            real_key = private_key(key)
        # Properly signed, but valid only from an hour on.
        early = {**claims, "nbf": claims["iat"] + 3600, "exp": claims["iat"] + 7200}

        def resign(hdr=None, **changes):
            return jwt.encode({**header, **(hdr or {})}, {**claims, **changes}, intruder)

        token = {
            "alg_none": lambda: _b64({**header, "alg": "none"}) + "." + good.split(".")[1] + ".",
            "hs256_with_public_key": lambda: jwt.encode(
                {**header, "alg": "HS256"},
                claims,
                OctKey.import_key(json.dumps(jwk).encode()),
                algorithms=["HS256"],
            ),
            "expired": None,
            "not_yet_valid": lambda: jwt.encode(header, early, real_key),
            "wrong_issuer": lambda: resign(iss="https://evil.example"),
            "wrong_audience": lambda: resign(aud="other"),
            "unknown_kid": lambda: resign({"kid": "nope"}),
            "tampered_payload": lambda: (
                good.split(".")[0]
                + "."
                + _b64({**claims, "roles": ["platform_admin"]})
                + "."
                + good.split(".")[2]
            ),
            "foreign_key_same_kid": lambda: resign(),
        }[forge]
        if forge == "expired":
            clock.freeze()
            clock.advance(timedelta(seconds=900 + 31))
            forged = good
        else:
            assert token is not None
            forged = token()
        with pytest.raises(Unauthorized):
            await verifier.verify(forged)
        if forge == "not_yet_valid":  # refused for its nbf alone: an hour later it is fine
            clock.freeze()
            clock.advance(timedelta(seconds=3600))
            assert (await verifier.verify(forged)).roles == {"prosecutor"}
        clock.unfreeze()
        assert (await verifier.verify(good)).roles == {"prosecutor"}


async def test_key_rotation_keeps_old_tokens_valid_until_they_expire(make_app):
    app = make_app()
    clock.freeze()
    async with running(app) as client:
        verifier = _verifier_through_jwks(app)
        old = (await client.post("/auth/token", data=password_form("ceav"))).json()["access_token"]
        await verifier.verify(old)  # caches the JWKS with only the old key
        old_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "=="))["kid"]

        with db.unit_of_work() as session:
            new_key = rotate_signing_key(session)
        assert new_key.kid != old_kid

        new = (await client.post("/auth/token", data=password_form("ceav"))).json()["access_token"]
        new_header = json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))
        assert new_header["kid"] == new_key.kid
        # Unknown kid: the verifier refetches the JWKS and accepts the new token.
        assert (await verifier.verify(new)).roles == {"ceav_officer"}
        assert (await verifier.verify(old)).roles == {"ceav_officer"}
        kids = {k["kid"] for k in (await client.get("/auth/jwks")).json()["keys"]}
        assert kids == {old_kid, new_key.kid}

        # Once every token signed by the old key has expired, the old key leaves the JWKS.
        clock.advance(timedelta(seconds=900 + 31))
        kids = {k["kid"] for k in (await client.get("/auth/jwks")).json()["keys"]}
        assert kids == {new_key.kid}
        with pytest.raises(Unauthorized):
            await verifier.verify(old)


# --- the private keys at rest (security issue 4) --------------------------------------


def _stored_rows(path) -> list[tuple[str, str]]:
    """``(kid, private_jwk)`` as an attacker reading the database file would get them."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT kid, private_jwk FROM signing_keys").fetchall()


def _assert_no_private_jwk(stored: str) -> None:
    assert stored.startswith("enc:v1:")
    assert '"d"' not in stored and "'d'" not in stored
    with pytest.raises(ValueError):
        json.loads(stored)
    with pytest.raises(Exception):  # noqa: B017 - nothing a JWK importer can use
        ECKey.import_key(stored)


async def test_the_signing_key_is_stored_encrypted_and_tokens_still_verify(make_app, tmp_path):
    app = make_app()
    async with running(app) as client:
        verifier = _verifier_through_jwks(app)
        token = (await client.post("/auth/token", data=password_form("fiscal"))).json()
        assert (await verifier.verify(token["access_token"])).roles == {"prosecutor"}
        rows = _stored_rows(tmp_path / "auth.db")
        assert len(rows) == 1
        _assert_no_private_jwk(rows[0][1])
        with db.unit_of_work() as session:
            key = current_key(session)
            assert key is not None
            private_d = str(private_key(key).as_dict(private=True)["d"])
        # The private scalar is nowhere in the files (database and WAL), in no encoding.
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("auth.db*"))
        assert private_d.encode() not in raw
        assert base64.urlsafe_b64decode(private_d + "=" * (-len(private_d) % 4)) not in raw
        # The attack of the report: a platform-admin token signed with what the file holds.
        header = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[0] + "=="))
        with pytest.raises(Exception):  # noqa: B017 - the stored value is no key
            jwt.encode(header, {"roles": ["platform_admin"]}, ECKey.import_key(rows[0][1]))


async def test_a_plaintext_key_of_an_old_installation_is_encrypted_on_start(
    make_app, tmp_path, signing_key
):
    # An older version's database: the migrated schema and its key as plain JSON.
    db.configure(f"sqlite:///{tmp_path}/auth.db")
    db.migrate()
    old = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, private=True)
    old_jwk = {**old.as_dict(private=True), "kid": old.thumbprint()}
    created = clock.now() - timedelta(days=30)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO signing_keys (kid, alg, private_jwk, created_at) "
                "VALUES (:kid, 'ES256', :jwk, :created)"
            ),
            {"kid": old.thumbprint(), "jwk": json.dumps(old_jwk), "created": created},
        )
    db.dispose()
    app = make_app()
    async with running(app) as client:
        verifier = _verifier_through_jwks(app)
        # A token the old version signed, just before the upgrade, still verifies.
        token = (await client.post("/auth/token", data=password_form("fiscal"))).json()
        claims = _claims(token["access_token"])
        before = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": old.thumbprint()}, claims, old)
        assert (await verifier.verify(before)).roles == {"prosecutor"}
        rows = dict(_stored_rows(tmp_path / "auth.db"))
        assert set(rows) >= {old.thumbprint()}
        for stored in rows.values():
            _assert_no_private_jwk(stored)
        # Stored in the clear, the old key may have been copied: a new key signs from now on.
        new_kid = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[0] + "=="))
        assert new_kid["kid"] != old.thumbprint()
        with db.unit_of_work() as session:
            current = current_key(session)
            assert current is not None and current.kid == new_kid["kid"]
            retired = session.get(SigningKey, old.thumbprint())
            assert retired is not None and retired.retired_at is not None
            assert private_key(retired).as_dict(private=True)["d"] == old_jwk["d"]
        assert (await verifier.verify(token["access_token"])).roles == {"prosecutor"}


async def test_a_wrong_key_encryption_key_stops_the_start_with_a_clear_error(make_app, tmp_path):
    first, second = new_kek(), new_kek()
    async with running(make_app(CANALIZA_KEY_ENCRYPTION_KEY=first)) as client:
        token = (await client.post("/auth/token", data=password_form("fiscal"))).json()
    (kid, sealed_first), *_ = _stored_rows(tmp_path / "auth.db")

    with pytest.raises(KeyEncryptionError) as refused:
        async with running(make_app(CANALIZA_KEY_ENCRYPTION_KEY=second)):
            pass
    message = str(refused.value)
    assert kid in message and "CANALIZA_KEY_ENCRYPTION_KEY" in message
    assert _stored_rows(tmp_path / "auth.db") == [(kid, sealed_first)]  # nothing rewritten

    # A KEK rotation: the former key listed, the rows are re-encrypted under the new one.
    app = make_app(CANALIZA_KEY_ENCRYPTION_KEY=second, CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS=first)
    async with running(app):
        assert (await _verifier_through_jwks(app).verify(token["access_token"])).roles == {
            "prosecutor"
        }
    (_, sealed_second), *_ = _stored_rows(tmp_path / "auth.db")
    assert sealed_second != sealed_first and keyring().is_current(sealed_second)
    async with running(make_app(CANALIZA_KEY_ENCRYPTION_KEY=second)):
        pass  # the former key is no longer needed


def test_rotate_key_refuses_a_wrong_key_encryption_key(tmp_path, monkeypatch):
    db.configure(f"sqlite:///{tmp_path}/auth.db")
    try:
        runner = CliRunner()
        monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", new_kek())
        get_settings.cache_clear()
        assert runner.invoke(auth_cli.app, ["rotate-key"]).exit_code == 0
        before = _stored_rows(tmp_path / "auth.db")
        monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", new_kek())
        get_settings.cache_clear()
        result = runner.invoke(auth_cli.app, ["rotate-key"])
        assert result.exit_code == 1 and "key-encryption key" in result.output
        assert _stored_rows(tmp_path / "auth.db") == before
    finally:
        db.dispose()


@pytest.mark.postgres
async def test_signing_keys_are_encrypted_on_postgres(pg_url, monkeypatch):
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    db.configure(pg_url)
    try:
        app = create_app([auth_main.service(), ServiceSpec(name="sample", routers=[sample.router])])
        async with running(app) as client:
            token = (await client.post("/auth/token", data=password_form("fiscal"))).json()
            assert (await _verifier_through_jwks(app).verify(token["access_token"])).roles == {
                "prosecutor"
            }
            with db.engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT private_jwk FROM auth.signing_keys")).all()
        assert stored
        for (value,) in stored:
            _assert_no_private_jwk(value)
    finally:
        db.dispose()
