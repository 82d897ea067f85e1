"""Federation: an institution's staff sign in through the institution's own OIDC provider.

Each provider is configured per institution (``CANALIZA_AUTH_FEDERATION_FILE``, YAML or
JSON; see docs/security/federation.md): discovery URL, client id and secret, which claim
carries the provider's roles and how they map onto Canaliza roles, and which e-mail
domains may come in. Authlib's Starlette client runs the authorization-code flow (PKCE
S256, nonce, ID-token signature and claims checked against the provider's JWKS); its state
lives in a signed, short-lived session cookie scoped to ``/auth/federation``.

The institution comes from the configuration, never from the provider's claims: an
institution's provider vouches only for its own staff. Roles are re-derived on every
sign-in (the provider is the source of truth) and ``platform_admin``/``service`` can
never be granted this way.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from authlib.integrations.starlette_client import OAuth
from sqlmodel import Session
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from auth import service
from auth.config import MFA_ROLES
from auth.models import User
from services.ids import stable_id
from services.security import ROLES
from services.vocabulary import UserRole

NEVER_FEDERATED = frozenset({UserRole.PLATFORM_ADMIN, UserRole.SERVICE})
FEDERATION_KEY = "auth_federation"  # runtime.state key of the app's Federation
PENDING_KEY = "canaliza_authorize"  # the Canaliza authorization request being served


class FederationSessionMiddleware:
    """Starlette's signed-cookie session, only under ``/auth/federation/``.

    Other paths (every other service, in the one-process app) pass straight through:
    no cookie parsing for them, and no clash with another part's ``scope["session"]``.
    """

    PREFIX = "/auth/federation/"

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.with_session = SessionMiddleware(app, path=self.PREFIX.rstrip("/"), **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.PREFIX):
            await self.with_session(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class FederationConfigError(ValueError):
    """The federation file is malformed (raised at start-up, never per request)."""


@dataclass(frozen=True)
class Provider:
    """One institution's identity provider."""

    key: str
    name: str
    institution_id: str
    discovery_url: str
    client_id: str
    client_secret: str
    scope: str = "openid profile email"
    roles_claim: str = "roles"
    role_map: dict[str, str] = field(default_factory=dict)
    username_claim: str = "preferred_username"
    domain_claim: str = "email"
    allowed_domains: tuple[str, ...] = ()
    mfa_by_idp: bool = False
    fetch_userinfo: bool = True


def _provider(raw: dict[str, Any]) -> Provider:
    try:
        secret = raw.get("client_secret") or os.environ.get(str(raw.get("client_secret_env")), "")
        provider = Provider(
            key=str(raw["key"]),
            name=str(raw.get("name") or raw["key"]),
            institution_id=str(raw["institution_id"]),
            discovery_url=str(raw["discovery_url"]),
            client_id=str(raw["client_id"]),
            client_secret=str(secret),
            scope=str(raw.get("scope") or "openid profile email"),
            roles_claim=str(raw.get("roles_claim") or "roles"),
            role_map={str(k): str(v) for k, v in (raw.get("role_map") or {}).items()},
            username_claim=str(raw.get("username_claim") or "preferred_username"),
            domain_claim=str(raw.get("domain_claim") or "email"),
            allowed_domains=tuple(str(d).lower() for d in raw.get("allowed_domains") or ()),
            mfa_by_idp=bool(raw.get("mfa_by_idp", False)),
            fetch_userinfo=bool(raw.get("fetch_userinfo", True)),
        )
    except KeyError as exc:
        raise FederationConfigError(f"federation provider lacks {exc.args[0]!r}") from exc
    if not provider.key.replace("-", "").isalnum() or len(provider.key) > 32:
        raise FederationConfigError(f"provider key {provider.key!r}: letters, digits, '-'")
    if "openid" not in provider.scope.split():
        raise FederationConfigError(f"provider {provider.key!r}: scope must include openid")
    bad = {v for v in provider.role_map.values() if v not in ROLES or v in NEVER_FEDERATED}
    if bad:
        raise FederationConfigError(f"provider {provider.key!r} maps onto {sorted(bad)}")
    return provider


def load_providers(path: str | Path | None) -> dict[str, Provider]:
    """Providers of the federation file (none when there is no file)."""
    if not path:
        return {}
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    items = (data or {}).get("providers") or []
    providers = [_provider(item) for item in items]
    keys = [p.key for p in providers]
    if len(set(keys)) != len(keys):
        raise FederationConfigError("duplicate provider keys")
    return {p.key: p for p in providers}


class Federation:
    """The configured providers and their Authlib clients (one per app)."""

    def __init__(self, providers: dict[str, Provider]) -> None:
        self.providers = providers
        self.oauth = OAuth()
        for p in providers.values():
            self.oauth.register(
                p.key,
                client_id=p.client_id,
                client_secret=p.client_secret,
                server_metadata_url=p.discovery_url,
                client_kwargs={"scope": p.scope, "code_challenge_method": "S256"},
            )

    def client(self, key: str) -> Any:
        return self.oauth.create_client(key)


# --- claims → a Canaliza user ---------------------------------------------------------------


class FederationRefused(Exception):
    """The provider's answer does not let this person into Canaliza."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (Keycloak puts roles under ``realm_access.roles``)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def map_roles(provider: Provider, claims: dict[str, Any]) -> list[str]:
    """Canaliza roles for the provider's role values (unknown values grant nothing)."""
    raw = claim(claims, provider.roles_claim)
    values = [raw] if isinstance(raw, str) else list(raw or [])
    roles = {provider.role_map[v] for v in values if isinstance(v, str) and v in provider.role_map}
    return sorted(roles - NEVER_FEDERATED)


def check_domain(provider: Provider, claims: dict[str, Any]) -> None:
    if not provider.allowed_domains:
        return
    value = claim(claims, provider.domain_claim)
    domain = value.rsplit("@", 1)[-1].lower() if isinstance(value, str) and "@" in value else ""
    if provider.domain_claim == "email" and claims.get("email_verified") is False:
        domain = ""
    if domain not in provider.allowed_domains:
        raise FederationRefused(
            "domain_not_allowed",
            "Su cuenta institucional no pertenece a un dominio autorizado para esta institución.",
        )


def local_username(provider: Provider, subject: str) -> str:
    """``<provider>:<subject>``, hashed when too long (a ':' never appears in local names)."""
    name = f"{provider.key}:{subject}"
    if len(name) > 80:
        name = f"{provider.key}:{hashlib.sha256(subject.encode()).hexdigest()[:40]}"
    return name.lower()


def provision_user(
    session: Session, *, provider: Provider, claims: dict[str, Any], demo: bool
) -> User:
    """The local account of a federated person, created or brought up to date.

    Raises :class:`FederationRefused` (after recording a failed login) when the domain,
    the roles or MFA do not allow the person in.
    """
    subject = str(claims.get("sub") or "")
    username = local_username(provider, subject)
    try:
        if not subject:
            raise FederationRefused("no_subject", "El proveedor no identificó a la persona.")
        check_domain(provider, claims)
        roles = map_roles(provider, claims)
        if not roles:
            raise FederationRefused(
                "no_mapped_role",
                "Su cuenta institucional no tiene un rol reconocido en Canaliza.",
            )
        if not demo and set(roles) & MFA_ROLES and not provider.mfa_by_idp:
            raise FederationRefused(
                "mfa_not_assured",
                "Su rol requiere segundo factor y este proveedor no lo garantiza.",
            )
    except FederationRefused as exc:
        _record_failure(session, provider, username, exc.reason)
        raise
    user = service.find_user(session, username)
    display = str(claims.get("name") or claim(claims, provider.username_claim) or username)[:200]
    if user is None:
        user = service.create_user(
            session,
            username=username,
            display_name=display,
            password=secrets.token_urlsafe(32),  # never told to anyone: no password sign-in
            roles=roles,
            institution_id=provider.institution_id,
            actor=None,
            check_institution=False,
        )
    elif not user.active:
        _record_failure(session, provider, username, "inactive")
        raise FederationRefused("inactive", "Su cuenta en Canaliza está desactivada.")
    else:
        user.roles = " ".join(roles)
        user.display_name = display
        user.institution_id = provider.institution_id
        session.add(user)
    service.record(
        session,
        service.login_succeeded(mfa=provider.mfa_by_idp, federated=provider.key, roles=roles),
        aggregate_id=user.id,
        actor=user.id,
        institution_id=user.institution_id,
    )
    return user


def _record_failure(session: Session, provider: Provider, username: str, reason: str) -> None:
    service.record(
        session,
        service.login_failed(username, f"federation_{reason}"),
        aggregate_id=stable_id("username", username),
        actor=None,
        institution_id=provider.institution_id,
    )
