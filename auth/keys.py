"""Signing keys (ES256, joserfc) and the JWTs the service issues (RFC 9068 access tokens).

A key's private JWK is stored encrypted with the key-encryption key (``services.at_rest``:
AES-256-GCM, the kid as associated data) in ``signing_keys.private_jwk``, whatever the
database; the JWKS publishes public parts only.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlmodel import Session, col, select

from auth.models import SigningKey
from services.at_rest import KeyEncryptionError, Keyring, StorageError, is_sealed, keyring
from services.clock import as_utc, utcnow
from services.settings import get_settings
from services.tokens import LEEWAY_SECONDS

ALG = "ES256"
# What the key-encryption key derives the signing keys' encryption key for.
SEALING_PURPOSE = "auth.signing_key"

log = logging.getLogger("canaliza.auth.keys")


def _seal(kid: str, jwk_json: bytes) -> str:
    return keyring().seal(jwk_json, purpose=SEALING_PURPOSE, context=kid)


def _new_key() -> SigningKey:
    key = ECKey.generate_key("P-256", parameters={"alg": ALG, "use": "sig"}, private=True)
    kid = key.thumbprint()
    data = key.as_dict(private=True)
    data["kid"] = kid
    sealed = _seal(kid, json.dumps(data).encode())
    return SigningKey(kid=kid, alg=ALG, private_jwk=sealed, created_at=utcnow())


@lru_cache(maxsize=64)
def _unsealed(kid: str, stored: str, ring: Keyring) -> ECKey:
    if not is_sealed(stored):
        raise KeyEncryptionError(
            f"the signing key {kid} is stored in plain text; the auth service encrypts it "
            "when it starts"
        )
    data = ring.unseal(stored, purpose=SEALING_PURPOSE, context=kid, what=f"signing key {kid}")
    return ECKey.import_key(json.loads(data))


def private_key(record: SigningKey) -> ECKey:
    """The private key of a signing-key row, decrypted with the key-encryption key."""
    return _unsealed(record.kid, record.private_jwk, keyring())


def _plain_jwk(record: SigningKey) -> bytes:
    try:
        ECKey.import_key(json.loads(record.private_jwk))
    except (ValueError, TypeError, JoseError) as exc:
        raise StorageError(
            f"the signing key {record.kid} is neither encrypted nor a private JWK"
        ) from exc
    return record.private_jwk.encode()


def seal_signing_keys(session: Session) -> list[str]:
    """Start-up: every signing key encrypted under the current key-encryption key.

    A row from before encryption (plain JSON) is encrypted, and if it was the key signing,
    a new key takes over (the old one verifies its tokens until they expire): a private key
    once stored in the clear may have been copied. A row sealed with a former KEK
    (``CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS``) is re-sealed. A row no configured KEK opens
    raises :class:`KeyEncryptionError`, so the service does not start. Returns the kids
    whose rows changed.
    """
    ring = keyring()
    changed: list[str] = []
    exposed_signer = False
    for row in session.exec(select(SigningKey)).all():
        if is_sealed(row.private_jwk):
            data = ring.unseal(
                row.private_jwk,
                purpose=SEALING_PURPOSE,
                context=row.kid,
                what=f"signing key {row.kid}",
            )
            if ring.is_current(row.private_jwk):
                continue
        else:
            data = _plain_jwk(row)
            exposed_signer = exposed_signer or row.retired_at is None
        row.private_jwk = ring.seal(data, purpose=SEALING_PURPOSE, context=row.kid)
        session.add(row)
        changed.append(row.kid)
    session.flush()
    if exposed_signer:
        fresh = rotate_signing_key(session)
        log.warning(
            "signing keys stored in plain text were encrypted (%s); new tokens are signed "
            "with the new key %s",
            ", ".join(changed),
            fresh.kid,
        )
    return changed


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
    keys = [private_key(k) for k in published_keys(session)]
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
    key = private_key(record)
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
    key = private_key(record)
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
    keys = [private_key(k) for k in published_keys(session)]
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
