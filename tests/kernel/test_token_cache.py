"""Verified token claims are cached until expiry; the deny-list and key changes still win."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from services import tokens
from services.app import Runtime
from services.clock import clock
from services.errors import Unauthorized, install_error_handlers
from services.security import PrincipalDep
from services.settings import get_settings
from services.tokens import StaticKeySource, TokenVerifier
from tests.conftest import TEST_KID, running


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every token that reaches signature verification (not answered from the cache)."""
    seen: list[str] = []
    real = jwt.decode

    def counting(value, *args, **kw):
        seen.append(value)
        return real(value, *args, **kw)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


async def test_a_verified_token_is_answered_from_the_cache(test_verifier, make_token, decodes):
    token = make_token("prosecutor", institution_id="fgr")
    first = await test_verifier.verify(token)
    again = await test_verifier.verify(token)
    assert again is first and again.roles == {"prosecutor"}
    assert decodes == [token]  # the signature was checked once
    other = make_token("prosecutor")
    await test_verifier.verify(other)
    assert decodes == [token, other]


async def test_a_cached_token_is_refused_once_it_expires(test_verifier, make_token, decodes):
    clock.freeze()
    token = make_token("prosecutor", ttl=60)
    await test_verifier.verify(token)
    clock.advance(timedelta(seconds=60 + tokens.LEEWAY_SECONDS + 1))
    with pytest.raises(Unauthorized):
        await test_verifier.verify(token)
    assert decodes == [token, token]  # checked again, not answered from the cache


async def test_a_new_key_set_means_checking_again(signing_key, make_token, decodes):
    verifier = TokenVerifier(
        issuer=get_settings().token_issuer(),
        audience=get_settings().audience,
        keys=StaticKeySource(KeySet([signing_key])),
    )
    token = make_token("prosecutor")
    await verifier.verify(token)
    # The issuer's keys rotated: the token's key is gone from the (re-fetched) key set.
    stranger = ECKey.generate_key("P-256", parameters={"kid": TEST_KID, "alg": "ES256"})
    verifier.keys = StaticKeySource(KeySet([stranger]))
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_a_revoked_token_is_refused_even_with_its_claims_cached(test_verifier, make_token):
    app = FastAPI()
    install_error_handlers(app)
    app.state.runtime = Runtime(settings=get_settings(), services={}, app=app)

    @app.get("/who")
    async def who(principal: PrincipalDep) -> dict[str, str]:
        return {"sub": principal.sub}

    token = make_token("prosecutor", sub="fiscal-1")
    headers = {"Authorization": f"Bearer {token}"}
    async with running(app) as client:
        assert (await client.get("/who", headers=headers)).json() == {"sub": "fiscal-1"}
        assert token in test_verifier._verified  # the claims are cached now
        claims = test_verifier._verified[token][0].claims
        app.state.runtime.revocations.add(claims["jti"], claims["exp"])
        r = await client.get("/who", headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "token_revoked"
        assert token in test_verifier._verified  # refused by the deny-list, not by a miss
