"""Issued tokens against the kernel verifier: discovery, JWKS, forgeries, key rotation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from auth.database import db
from auth.keys import current_key, rotate_signing_key
from services import security
from services.app import INTERNAL_BASE_URL
from services.clock import clock
from services.errors import Unauthorized
from services.tokens import RemoteKeySource
from tests.auth.conftest import password_form
from tests.conftest import running


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
        for session in db.session_scope():
            real_key = ECKey.import_key(json.loads(current_key(session).private_jwk))
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

        for session in db.session_scope():
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
