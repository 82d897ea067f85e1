"""Signing keys (ES256, joserfc) and the JWTs the service issues (RFC 9068 access tokens)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlmodel import Session, col, select

from auth.models import SigningKey
from services.clock import as_utc, utcnow
from services.settings import get_settings
from services.tokens import LEEWAY_SECONDS

ALG = "ES256"


def _new_key() -> SigningKey:
    key = ECKey.generate_key("P-256", parameters={"alg": ALG, "use": "sig"}, private=True)
    kid = key.thumbprint()
    data = key.as_dict(private=True)
    data["kid"] = kid
    return SigningKey(kid=kid, alg=ALG, private_jwk=json.dumps(data), created_at=utcnow())


def current_key(session: Session) -> SigningKey | None:
    """The newest unretired signing key."""
    return session.exec(
        select(SigningKey)
        .where(col(SigningKey.retired_at).is_(None))
        .order_by(col(SigningKey.created_at).desc())
    ).first()


def ensure_signing_key(session: Session) -> SigningKey:
    """The current signing key, creating one on first start."""
    key = current_key(session)
    if key is None:
        key = _new_key()
        session.add(key)
        session.flush()
    return key


def rotate_signing_key(session: Session) -> SigningKey:
    """Retire the current key and start signing with a new one.

    Retired keys stay in the JWKS until every token they signed has expired.
    """
    now = utcnow()
    for old in session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))):
        old.retired_at = now
        session.add(old)
    key = _new_key()
    # Strictly later than the retired ones, so "newest" is unambiguous on a frozen clock.
    key.created_at = now + timedelta(microseconds=1)
    session.add(key)
    session.flush()
    return key


def _verification_horizon() -> timedelta:
    return timedelta(seconds=get_settings().access_token_ttl_seconds + LEEWAY_SECONDS)


def published_keys(session: Session) -> list[SigningKey]:
    """Keys a verifier may still need: the current one and recently retired ones."""
    cutoff = utcnow() - _verification_horizon()
    keys = session.exec(select(SigningKey).order_by(col(SigningKey.created_at).desc())).all()
    return [k for k in keys if k.retired_at is None or as_utc(k.retired_at) > cutoff]


def public_jwks(session: Session) -> dict[str, Any]:
    """The JWKS document (public parts only)."""
    keys = [ECKey.import_key(json.loads(k.private_jwk)) for k in published_keys(session)]
    return dict(KeySet(keys).as_dict(private=False))  # type: ignore[arg-type]


def mint_access_token(
    session: Session,
    *,
    sub: str,
    client_id: str,
    scope: str,
    roles: list[str],
    institution_id: str | None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign an RFC 9068 access token; returns the token and its claims."""
    settings = get_settings()
    record = ensure_signing_key(session)
    key = ECKey.import_key(json.loads(record.private_jwk))
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = {
        "iss": settings.token_issuer(),
        "aud": settings.audience,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": secrets.token_hex(16),
        "client_id": client_id,
        "scope": scope,
        "roles": roles,
        "institution_id": institution_id,
        **(extra or {}),
    }
    header = {"alg": ALG, "typ": "at+jwt", "kid": record.kid}
    return jwt.encode(header, claims, key, algorithms=[ALG]), claims


def mint_id_token(
    session: Session, *, sub: str, client_id: str, nonce: str | None, claims: dict[str, Any]
) -> str:
    """An OpenID Connect ID token for ``client_id``."""
    settings = get_settings()
    record = ensure_signing_key(session)
    key = ECKey.import_key(json.loads(record.private_jwk))
    now = int(utcnow().timestamp())
    body = {
        "iss": settings.token_issuer(),
        "aud": client_id,
        "sub": sub,
        "iat": now,
        "exp": now + settings.access_token_ttl_seconds,
        **claims,
    }
    if nonce:
        body["nonce"] = nonce
    return jwt.encode({"alg": ALG, "typ": "JWT", "kid": record.kid}, body, key, algorithms=[ALG])


def decode_own_access_token(session: Session, token: str) -> dict[str, Any] | None:
    """Claims of an access token this service issued and can still verify, else None.

    Signature, ``typ``, ``iss`` and ``aud`` are checked; expiry is left to the caller.
    """
    if token.count(".") != 2 or len(token) > 8192:
        return None
    keys = [ECKey.import_key(json.loads(k.private_jwk)) for k in published_keys(session)]
    try:
        decoded = jwt.decode(token, KeySet(keys), algorithms=[ALG])  # type: ignore[arg-type]
        if decoded.header.get("typ") not in ("at+jwt", "application/at+jwt"):
            return None
    except (JoseError, ValueError, TypeError):
        return None
    settings = get_settings()
    claims = dict(decoded.claims)
    if claims.get("iss") != settings.token_issuer() or claims.get("aud") != settings.audience:
        return None
    if not isinstance(claims.get("exp"), int) or not isinstance(claims.get("jti"), str):
        return None
    return claims


def expires_at(claims: dict[str, Any]) -> datetime:
    """The ``exp`` claim as an aware datetime."""
    return datetime.fromtimestamp(int(claims["exp"]), tz=utcnow().tzinfo)
