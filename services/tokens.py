"""Access-token checking for every service (joserfc; RFC 9068 JWT access tokens).

Algorithms are pinned, ``typ`` must be ``at+jwt``, ``iss``/``aud``/``exp``/``nbf`` are
checked against the platform clock, and keys come from a JWKS that is cached and
re-fetched (at most every few seconds) when a token names an unknown ``kid``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.clock import utcnow
from services.errors import Unauthorized

log = logging.getLogger("canaliza.tokens")

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY_SECONDS = 30
# Verified tokens remembered (each until its expiry): a few per active user.
CLAIMS_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: the subject of a verified access token."""

    sub: str
    roles: frozenset[str]
    institution_id: str | None = None
    client_id: str | None = None
    scope: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def has(self, *roles: str) -> bool:
        """Whether the principal holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    @property
    def is_service(self) -> bool:
        return "service" in self.roles


class RevocationList:
    """Access tokens revoked before their expiry, each kept only as long as it matters.

    Two kinds of entry: a token's ``jti`` (one access token revoked), and a ``sid`` (a
    refresh-token family revoked, e.g. on reuse: every access token issued from it).
    Filled from the auth service's ``auth.token.revoked`` events (the app factory
    subscribes every app to them), so a revoked token stops working in every service,
    not only at introspection. Bounded: an entry leaves once no token it names can still
    be valid.
    """

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], int] = {}
        self._next_purge = 0
        self._listeners: list[Callable[[str, str], None]] = []

    def on_revoke(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``listener(kind, value)`` (``kind`` ``jti`` or ``sid``) on every revocation,
        right after the entry is recorded; returns the function that stops the calls.

        Long-lived connections (the live feed) use it to close what a revoked token opened:
        the deny-list alone only refuses a token the next time it is presented."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def add(self, jti: str, exp: int | None) -> None:
        """Deny the access token ``jti`` until its ``exp`` (default: one day)."""
        self._add(("jti", jti), exp)

    def add_family(self, sid: str, until: int | None) -> None:
        """Deny every access token whose ``sid`` is this refresh-token family."""
        self._add(("sid", sid), until)

    def _add(self, key: tuple[str, str], exp: int | None) -> None:
        now = int(utcnow().timestamp())
        until = int(exp) + LEEWAY_SECONDS if exp is not None else now + 86_400
        if until > now:
            self._until[key] = max(until, self._until.get(key, 0))
        if now >= self._next_purge:
            self._until = {k: v for k, v in self._until.items() if v > now}
            self._next_purge = now + 60
        if until > now:
            for listener in list(self._listeners):
                try:
                    listener(*key)
                except Exception:  # one listener's failure never stops the deny-list
                    log.exception("revocation listener failed")

    def is_revoked(self, jti: object, sid: object = None) -> bool:
        now = int(utcnow().timestamp())
        named = (("jti", jti), ("sid", sid))
        return any(isinstance(v, str) and self._until.get((k, v), 0) > now for k, v in named)

    def __len__(self) -> int:
        return len(self._until)


class KeySource:
    """Where verification keys come from."""

    async def key_set(self, *, refresh: bool = False) -> KeySet:  # pragma: no cover - interface
        raise NotImplementedError


class StaticKeySource(KeySource):
    """A fixed JWKS (tests, or a JWKS file)."""

    def __init__(self, jwks: KeySet | dict[str, Any]) -> None:
        self._keys = jwks if isinstance(jwks, KeySet) else KeySet.import_key_set(jwks)  # type: ignore[arg-type]

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        return self._keys


class CallableKeySource(KeySource):
    """A JWKS produced in-process (the auth service mounted in the same process)."""

    def __init__(self, producer: Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]) -> None:
        self._producer = producer
        self._cached: KeySet | None = None

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        if self._cached is None or refresh:
            data = self._producer()
            if asyncio.iscoroutine(data) or isinstance(data, Awaitable):
                data = await data
            self._cached = KeySet.import_key_set(data)  # type: ignore[arg-type]
        return self._cached


class RemoteKeySource(KeySource):
    """A JWKS fetched over HTTP, cached for ``ttl`` seconds, refreshed on unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300,
        min_refresh_interval: float = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self._transport = transport
        self._cached: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        age = time.monotonic() - self._fetched_at
        stale = self._cached is None or age > self.ttl
        if refresh and age > self.min_refresh_interval:
            stale = True
        if stale:
            async with self._lock:
                if self._cached is None or time.monotonic() - self._fetched_at >= min(
                    self.ttl, self.min_refresh_interval
                ):
                    await self._fetch()
        assert self._cached is not None
        return self._cached

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=5) as client:
                resp = await client.get(self.url)
                resp.raise_for_status()
                self._cached = KeySet.import_key_set(resp.json())
                self._fetched_at = time.monotonic()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            if self._cached is None:
                raise Unauthorized(
                    "No se pudieron obtener las llaves del emisor de tokens.",
                    code="jwks_unavailable",
                ) from exc


def _segment(data: str) -> dict[str, Any]:
    padded = data + "=" * (-len(data) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


class TokenVerifier:
    """Verifies access tokens of one issuer for one audience."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySource,
        algorithms: list[str] | tuple[str, ...] = ("ES256",),
        cache_size: int = CLAIMS_CACHE_SIZE,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.algorithms = tuple(algorithms)
        self.cache_size = cache_size
        # token -> (principal, last second it is valid, the key set that verified it)
        self._verified: OrderedDict[str, tuple[Principal, int, KeySet]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`Unauthorized` for anything else.

        A token verified before is answered from a bounded cache until its ``exp`` (plus
        the leeway) passes, as long as the key set that verified it is still the current
        one (a re-fetched JWKS means checking again). Revocation is not decided here:
        callers check the deny-list on every request (``services.security``)."""
        hit = self._verified.get(token)
        if hit is not None:
            principal, until, keys = hit
            if int(utcnow().timestamp()) <= until and await self.keys.key_set() is keys:
                self._verified.move_to_end(token)
                return principal
            self._verified.pop(token, None)
        principal, keys = await self._verify(token)
        exp = principal.claims.get("exp")
        if self.cache_size > 0 and isinstance(exp, int) and not isinstance(exp, bool):
            self._verified[token] = (principal, exp + LEEWAY_SECONDS, keys)
            while len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, KeySet]:
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 8192:
            raise Unauthorized(
                "El token no tiene el formato de un JWT firmado.", code="invalid_token"
            )
        try:
            header = _segment(parts[0])
        except ValueError as exc:
            raise Unauthorized(
                "El encabezado del token es ilegible.", code="invalid_token"
            ) from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise Unauthorized(f"Algoritmo de firma no aceptado: {alg!r}.", code="invalid_token")
        if header.get("typ") not in ACCESS_TOKEN_TYPES:
            raise Unauthorized(
                "El token no es un token de acceso (typ at+jwt).", code="invalid_token"
            )
        if not isinstance(kid, str):
            raise Unauthorized("El token no identifica su llave (kid).", code="invalid_token")
        key_set = await self.keys.key_set()
        if not any(k.kid == kid for k in key_set):
            key_set = await self.keys.key_set(refresh=True)
            if not any(k.kid == kid for k in key_set):
                raise Unauthorized("Llave de firma desconocida.", code="invalid_token")
        try:
            decoded = jwt.decode(token, key_set, algorithms=list(self.algorithms))
            jwt.JWTClaimsRegistry(
                now=lambda: int(utcnow().timestamp()),
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise Unauthorized(
                f"Token rechazado: {exc.description or exc.error}.", code="invalid_token"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise Unauthorized("Token ilegible.", code="invalid_token") from exc
        return principal_from_claims(decoded.claims), key_set


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Build a principal from verified claims."""
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("El token trae roles mal formados.", code="invalid_token")
    institution = claims.get("institution_id")
    return Principal(
        sub=str(claims["sub"]),
        roles=frozenset(roles),
        institution_id=str(institution) if institution is not None else None,
        client_id=claims.get("client_id"),
        scope=str(claims.get("scope", "")),
        claims=dict(claims),
    )
