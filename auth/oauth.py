# Authlib ships no type information: its grant and endpoint classes are Any to mypy.
# mypy: allow-subclassing-any
"""Authlib's OAuth 2 authorization server, adapted to Starlette and this service's tables.

Authlib ships no Starlette *server* integration, so this module implements the generic
server's framework hooks (``create_oauth2_request``, ``handle_response``) and the grant
and endpoint storage hooks. A server is built per request around that request's
database session, so every grant works inside the request's single transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import delete
from sqlmodel import Session

from auth import service
from auth.keys import decode_own_access_token, mint_access_token, mint_id_token
from auth.models import AuthorizationCode, OAuthClient, RefreshToken, User
from services.clock import as_utc, utcnow
from services.ids import new_id
from services.settings import Settings
from services.vocabulary import UserRole

# Authlib logs every issued token (access and refresh, in full) at DEBUG: a process run with
# debug logging would write bearer credentials to its logs. Its records stop at INFO.
logging.getLogger("authlib").setLevel(logging.INFO)

SUPPORTED_SCOPES = ("openid", "profile", "canaliza")

# The contract's human ``detail`` for each OAuth error code (es-MX).
ERROR_DETAILS = {
    "invalid_request": "La petición al servicio de identidad está incompleta o mal formada.",
    "invalid_client": "El cliente no pudo autenticarse.",
    "invalid_grant": "La credencial presentada no es válida, ya se usó o expiró.",
    "unauthorized_client": "Este cliente no tiene permitido ese tipo de concesión.",
    "unsupported_grant_type": "Tipo de concesión no admitido.",
    "invalid_scope": "El alcance solicitado no es válido.",
    "access_denied": "Acceso denegado.",
    "unsupported_response_type": "Tipo de respuesta no admitido.",
    "unsupported_token_type": "Tipo de token no admitido.",
    "insecure_transport": "Se requiere HTTPS.",
}
PASSWORD_OUTSIDE_DEMO = (
    "La concesión 'password' solo está disponible en modo demostración (CANALIZA_DEMO=1)."  # noqa: S105
)


class FormPayload(OAuth2Payload):
    """Query and form parameters of one request (form wins), with repeated values kept."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {k: v[-1] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An OAuth2Request built from data already read from a Starlette request."""

    def __init__(
        self,
        *,
        method: str,
        url: str,
        headers: Any,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
        client_host: str | None = None,
    ) -> None:
        # TLS ends at the reverse proxy in front of the app (and in-process calls use an
        # internal http URL); transport security is a deployment concern, not Authlib's.
        parts = urlsplit(url)
        super().__init__(
            method=method, uri=parts._replace(scheme="https").geturl(), headers=headers
        )
        self.client_host = client_host or "unknown"
        self._query = dict(query)
        self._form = dict(form)
        self.payload = FormPayload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Client(ClientMixin):
    """Authlib's view of an :class:`OAuthClient` row."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    @property
    def redirect_uris(self) -> list[str]:
        return self.row.redirect_uris.split()

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in SUPPORTED_SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        # RFC 8252 §7.3: native apps on the loopback interface may use any port.
        if "\\" in redirect_uri or not redirect_uri.isprintable() or not redirect_uri.isascii():
            return False
        try:
            asked = urlsplit(redirect_uri)
            asked.port  # noqa: B018 (raises on a port that is not a number in range)
        except ValueError:
            return False
        for allowed in map(urlsplit, self.redirect_uris):
            if (
                allowed.hostname in ("127.0.0.1", "localhost", "::1")
                and asked.scheme == allowed.scheme == "http"
                and asked.hostname == allowed.hostname
                and asked.username is None
                and asked.password is None
                and asked.path == allowed.path
                and not asked.query
                and not asked.fragment
            ):
                return True
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return service.check_client_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.row.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.check_grant_type("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types.split()


@dataclass
class RefreshCredential:
    """A refresh token row as Authlib's TokenMixin."""

    row: RefreshToken

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.client_id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((as_utc(self.row.expires_at) - utcnow()).total_seconds())

    def is_expired(self) -> bool:
        return as_utc(self.row.expires_at) <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None


@dataclass
class AccessCredential:
    """A verified access token (its claims) as Authlib's TokenMixin."""

    claims: dict[str, Any]
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return self.claims.get("client_id") == client.client_id

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(self.claims["iat"])

    def is_expired(self) -> bool:
        return int(self.claims["exp"]) <= int(utcnow().timestamp())

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class CodeCredential:
    """An authorization code row as Authlib's AuthorizationCodeMixin (PKCE fields too)."""

    row: AuthorizationCode
    code_challenge: str = field(init=False)
    code_challenge_method: str = field(init=False)

    def __post_init__(self) -> None:
        self.code_challenge = self.row.code_challenge
        self.code_challenge_method = self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


def _session(grant: Any) -> Session:
    server: CanalizaAuthorizationServer = grant.server
    return server.session


def _active_user(session: Session, user_id: str | None) -> User | None:
    user = session.get(User, user_id) if user_id else None
    return user if user is not None and user.active else None


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    """Demo only (registered only when demo mode is on)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]

    def authenticate_user(self, username: str, password: str) -> User:
        try:
            user = service.authenticate_password(
                _session(self),
                username=username,
                password=password,
                demo=True,
                address=getattr(self.request, "client_host", "unknown"),
            )
        except service.LoginFailed as exc:
            # The same description for unknown users, bad passwords and locked accounts on
            # purpose: the answer never tells whether a username exists or is locked.
            err = InvalidGrantError(description="invalid_credentials")
            err.detail = exc.detail
            raise err from None
        if user.password_change_required:
            # The right temporary password: only the sign-in form may replace it.
            err = InvalidGrantError(description="password_change_required")
            err.detail = (
                "La contraseña es temporal: cámbiela al iniciar sesión en la web antes de "
                "pedir un token."
            )
            raise err
        return user


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation on every use; reuse of a rotated token revokes its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        row = service.use_refresh_token(
            _session(self), raw=refresh_token, client_id=self.request.client.client_id
        )
        if row is None:
            return None
        server: CanalizaAuthorizationServer = self.server
        server.family_id = row.family_id  # the new tokens stay in the same family
        return RefreshCredential(row)

    def authenticate_user(self, refresh_token: RefreshCredential) -> User | None:
        return _active_user(_session(self), refresh_token.row.user_id)

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        # Already marked rotated, by compare-and-set, in authenticate_refresh_token.
        return None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        service.save_authorization_code(
            _session(self),
            code=code,
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=data.get("redirect_uri") or "",
            scope=request.scope or "",
            code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method") or "S256",
            nonce=data.get("nonce"),
        )

    def query_authorization_code(self, code: str, client: Client) -> CodeCredential | None:
        session = _session(self)
        row = service.find_authorization_code(session, code=code, client_id=client.client_id)
        if row is None:
            return None
        # Consume now, by compare-and-set: a code works once even under concurrency.
        result = session.execute(
            delete(AuthorizationCode).where(AuthorizationCode.code_hash == row.code_hash)  # type: ignore[arg-type]
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return CodeCredential(row)

    def delete_authorization_code(self, authorization_code: CodeCredential) -> None:
        return None

    def authenticate_user(self, authorization_code: CodeCredential) -> User | None:
        return _active_user(_session(self), authorization_code.row.user_id)


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (OAuth 2.1)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]


def _query_token(
    session: Session, token_string: str, hint: str | None
) -> RefreshCredential | AccessCredential | None:
    if hint != "access_token":
        row = service.find_refresh_token(session, token_string)
        if row is not None:
            return RefreshCredential(row)
    if hint != "refresh_token" or token_string.count(".") == 2:
        claims = decode_own_access_token(session, token_string)
        if claims is not None:
            return AccessCredential(
                claims, revoked=service.is_access_token_revoked(session, str(claims["jti"]))
            )
    return None


class Revocation(RevocationEndpoint):
    """RFC 7009. Public clients may revoke their own tokens."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _query_token(self.server.session, token_string, token_type_hint)

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        session = self.server.session
        if isinstance(token, RefreshCredential):
            service.revoke_family(
                session,
                family_id=token.row.family_id,
                actor=token.row.user_id or token.row.client_id,
                reason="revoked",
            )
        else:
            service.revoke_access_token(
                session, claims=token.claims, actor=str(token.claims["sub"])
            )


class Introspection(IntrospectionEndpoint):
    """RFC 7662, for confidential (authenticated) clients only."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _query_token(self.server.session, token_string, token_type_hint)

    def check_permission(self, token: Any, client: Client, request: OAuth2Request) -> bool:
        return not client.row.is_public

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, AccessCredential):
            keep = ("sub", "scope", "client_id", "exp", "iat", "nbf", "iss", "aud", "jti")
            body = {k: token.claims[k] for k in keep if k in token.claims}
            body.update(
                active=True,
                token_type="Bearer",  # noqa: S106
                roles=token.claims.get("roles", []),
                institution_id=token.claims.get("institution_id"),
            )
            return body
        row = token.row
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": row.client_id,
            "sub": row.user_id or row.client_id,
            "scope": row.scope,
            "exp": int(as_utc(row.expires_at).timestamp()),
            "iat": int(as_utc(row.issued_at).timestamp()),
        }


@dataclass
class Response:
    """What the server answers; the router renders it."""

    status: int
    body: Any
    headers: list[tuple[str, str]]


class CanalizaAuthorizationServer(AuthorizationServer):
    """One request's authorization server, bound to that request's session."""

    def __init__(self, session: Session, settings: Settings) -> None:
        super().__init__(scopes_supported=list(SUPPORTED_SCOPES))
        self.session = session
        self.settings = settings
        # The refresh-token family of this request's tokens; access tokens carry it as
        # ``sid`` so revoking the family also revokes them everywhere (services/tokens.py).
        self.family_id: str | None = None
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)
        if settings.demo:
            self.register_grant(PasswordGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    # --- storage hooks --------------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        row = self.session.get(OAuthClient, client_id) if client_id else None
        return Client(row) if row else None

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        scope = client.get_allowed_scope(scope)
        if user is None:
            roles = sorted({UserRole.SERVICE, *client.row.roles.split()})
            sub, institution, extra = client.client_id, client.row.institution_id, {}
        else:
            roles, sub, institution = user.role_list, user.id, user.institution_id
            extra = {"preferred_username": user.username}
            if include_refresh_token and client.check_grant_type("refresh_token"):
                self.family_id = self.family_id or new_id()
                extra["sid"] = self.family_id
        access, claims = mint_access_token(
            self.session,
            sub=sub,
            client_id=client.client_id,
            scope=scope,
            roles=roles,
            institution_id=institution,
            extra=extra,
        )
        token: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
        }
        if scope:
            token["scope"] = scope
        if include_refresh_token and user is not None and client.check_grant_type("refresh_token"):
            token["_refresh_for"] = user.id
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        user_id = token.pop("_refresh_for", None)
        if user_id:
            previous = request.refresh_token
            token["refresh_token"] = service.issue_refresh_token(
                self.session,
                client_id=request.client.client_id,
                user_id=user_id,
                scope=token.get("scope", ""),
                family_id=self.family_id
                or (previous.row.family_id if previous is not None else None),
            )
        code = request.authorization_code
        if code is not None and "openid" in token.get("scope", "").split():
            user: User = request.user
            token["id_token"] = mint_id_token(
                self.session,
                sub=user.id,
                client_id=request.client.client_id,
                nonce=code.row.nonce,
                claims={"preferred_username": user.username, "name": user.display_name},
            )

    # --- framework hooks ---------------------------------------------------------------

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("build a StarletteOAuth2Request first")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return Response(status, body, list(headers or []))

    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> Response:
        status, body, headers = error(self.get_error_uri(request, error))
        if status == 302:  # an error sent back to a validated redirect URI
            return Response(status, body, list(headers or []))
        body = dict(body)
        detail = getattr(error, "detail", None) or ERROR_DETAILS.get(error.error, "Error.")
        if error.error == "unsupported_grant_type" and request.payload.grant_type == "password":
            detail = PASSWORD_OUTSIDE_DEMO
        body.setdefault("error_description", error.description or error.error)
        body["detail"] = detail
        if error.error == "invalid_client":
            status = 401
            headers = [*(headers or []), ("WWW-Authenticate", 'Basic realm="canaliza"')]
        return Response(status, body, list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


def require_pkce(request: OAuth2Request) -> None:
    """OAuth 2.1: every authorization request carries an S256 code challenge."""
    data = request.payload.data
    if not data.get("code_challenge") or data.get("code_challenge_method", "S256") != "S256":
        raise InvalidRequestError(
            "PKCE S256 is required: send code_challenge and code_challenge_method=S256."
        )
