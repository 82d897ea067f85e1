"""FastAPI dependencies for authentication and authorisation.

Every route of a service router needs a valid access token (the app factory adds
:func:`authenticate` to each private router); handlers ask for ``PrincipalDep`` and
check roles with :func:`require_roles`. Which role may do what is decided in one place
per service (its ``permissions.py``), see ``docs/security/permissions.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket

from services.errors import Forbidden, Unauthorized
from services.settings import get_settings
from services.tokens import (
    KeySource,
    Principal,
    RemoteKeySource,
    RevocationList,
    TokenVerifier,
)
from services.vocabulary import UserRole

# Every role a token may carry: the kernel's vocabulary (services.vocabulary.UserRole).
ROLES = UserRole.values()

_verifier: TokenVerifier | None = None


def configure_verifier(verifier: TokenVerifier | None) -> None:
    """Install the verifier every service uses (the launcher and tests call this)."""
    global _verifier
    _verifier = verifier


def make_verifier(keys: KeySource | None = None) -> TokenVerifier:
    """A verifier from settings; ``keys`` defaults to the configured JWKS URL."""
    settings = get_settings()
    if keys is None:
        url = settings.jwks_url or f"{settings.auth_url or settings.base_url()}/auth/jwks"
        keys = RemoteKeySource(url)
    return TokenVerifier(
        issuer=settings.token_issuer(),
        audience=settings.audience,
        keys=keys,
        algorithms=settings.token_algorithms,
    )


def get_verifier() -> TokenVerifier:
    global _verifier
    if _verifier is None:
        _verifier = make_verifier()
    return _verifier


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use el encabezado Authorization: Bearer <token>.")
    return token.strip()


def check_not_revoked(app: Any, principal: Principal) -> None:
    """Refuse a token the auth service revoked (the app's deny-list, fed by events)."""
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    revocations = getattr(runtime, "revocations", None)
    if isinstance(revocations, RevocationList) and revocations.is_revoked(
        principal.claims.get("jti"), principal.claims.get("sid")
    ):
        raise Unauthorized("El token fue revocado.", code="token_revoked")


async def authenticate(request: Request) -> Principal:
    """The verified principal of this request (cached on the request)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    principal = await get_verifier().verify(bearer_token(request.headers.get("authorization")))
    check_not_revoked(request.app, principal)
    request.state.principal = principal
    return principal


async def authenticate_websocket_token(websocket: WebSocket, token: str) -> Principal:
    """Verify a token a WebSocket client sent in its first message."""
    principal = await get_verifier().verify(token)
    check_not_revoked(websocket.app, principal)
    websocket.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only principals holding one of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def _dependency(principal: PrincipalDep) -> Principal:
        if not principal.has(*roles):
            raise Forbidden("Su rol no permite esta operación.", code="forbidden_role")
        return principal

    _dependency.__name__ = f"require_{'_or_'.join(roles)}"
    return _dependency
