"""HTTP layer of the auth service: OAuth/OIDC endpoints (public) and user routes (private)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from auth import permissions, service
from auth.dependencies import SessionDep
from auth.keys import public_jwks
from auth.models import User
from auth.oauth import (
    SUPPORTED_SCOPES,
    CanalizaAuthorizationServer,
    StarletteOAuth2Request,
    require_pkce,
)
from auth.oauth import Response as OAuthResponse
from auth.pages import OAUTH_PARAMS, error_page, login_page
from auth.ratelimit import client_address, limiter_for
from auth.schemas import TotpConfirm, TotpEnrolment, UserCreate, UserInfo, UserPublic
from services.errors import NotFound
from services.security import PrincipalDep
from services.settings import get_settings

public_router = APIRouter(tags=["auth"])
router = APIRouter(tags=["auth"])

CSRF_COOKIE = "canaliza_csrf"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FIELD = 4096


async def _oauth_request(request: Request) -> StarletteOAuth2Request:
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        data = await request.form()
        form = [(k, v[:MAX_FIELD]) for k, v in data.multi_items() if isinstance(v, str)]
    return StarletteOAuth2Request(
        method=request.method,
        url=str(request.url),
        headers=request.headers,  # case-insensitive, as Authlib expects
        query=[(k, v[:MAX_FIELD]) for k, v in request.query_params.multi_items()],
        form=form,
    )


def _render(result: OAuthResponse) -> Response:
    headers = {k: v for k, v in result.headers if k.lower() != "content-type"}
    if result.status == 302:
        return RedirectResponse(headers.pop("Location"), status_code=302, headers=headers)
    return JSONResponse(result.body, result.status, headers={**headers, **NO_STORE})


def _server(session: Session) -> CanalizaAuthorizationServer:
    return CanalizaAuthorizationServer(session, get_settings())


@public_router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
async def openid_configuration() -> dict[str, Any]:
    issuer = get_settings().token_issuer()
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "jwks_uri": f"{issuer}/auth/jwks",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/auth/introspect",
        "userinfo_endpoint": f"{issuer}/auth/userinfo",
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            *(["password"] if get_settings().demo else []),
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "roles",
            "institution_id",
            "preferred_username",
            "name",
        ],
    }


@public_router.get("/auth/jwks", summary="Public signing keys (JWKS)")
def jwks(session: SessionDep) -> JSONResponse:
    return JSONResponse(public_jwks(session), headers={"Cache-Control": "public, max-age=60"})


@public_router.post("/auth/token", summary="OAuth 2 token endpoint (form-encoded)")
async def token(request: Request, session: SessionDep) -> Response:
    limiter, address = limiter_for(request), client_address(request)
    limiter.check(address)
    oauth_request = await _oauth_request(request)
    result = await run_in_threadpool(_server(session).create_token_response, oauth_request)
    if result.status in (400, 401):
        limiter.record_failure(address)
    return _render(result)


@public_router.post("/auth/revoke", summary="Token revocation (RFC 7009)")
async def revoke(request: Request, session: SessionDep) -> Response:
    oauth_request = await _oauth_request(request)
    result = await run_in_threadpool(
        _server(session).create_endpoint_response, "revocation", oauth_request
    )
    return _render(result)


@public_router.post("/auth/introspect", summary="Token introspection (RFC 7662)")
async def introspect(request: Request, session: SessionDep) -> Response:
    oauth_request = await _oauth_request(request)
    result = await run_in_threadpool(
        _server(session).create_endpoint_response, "introspection", oauth_request
    )
    return _render(result)


def _validate_authorization(session: Session, oauth_request: StarletteOAuth2Request) -> Any:
    server = _server(session)
    grant = server.get_consent_grant(oauth_request)
    require_pkce(oauth_request)
    return grant


def _authorize_error(exc: Exception) -> Response:
    description = getattr(exc, "description", "") or "solicitud inválida"
    return HTMLResponse(
        error_page(f"La solicitud de autorización no es válida ({description})."), 400
    )


@public_router.get("/auth/authorize", summary="Authorization endpoint: the sign-in page")
async def authorize_page(request: Request, session: SessionDep) -> Response:
    from authlib.oauth2.rfc6749 import OAuth2Error

    oauth_request = await _oauth_request(request)
    try:
        await run_in_threadpool(_validate_authorization, session, oauth_request)
    except OAuth2Error as exc:
        return _authorize_error(exc)
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    resp = HTMLResponse(login_page(params=oauth_request.payload.data, csrf=csrf))
    resp.set_cookie(
        CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/auth/authorize", max_age=900
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; form-action 'self'"
    return resp


def _sign_in(session: Session, oauth_request: StarletteOAuth2Request) -> Response:
    from authlib.oauth2.rfc6749 import OAuth2Error

    try:
        grant = _validate_authorization(session, oauth_request)
    except OAuth2Error as exc:
        return _authorize_error(exc)
    form = oauth_request.form
    params = {k: v for k, v in oauth_request.payload.data.items() if k in OAUTH_PARAMS}
    params["username"] = form.get("username", "")
    try:
        user = service.authenticate_password(
            session,
            username=form.get("username", ""),
            password=form.get("password", ""),
            totp_code=form.get("totp") or None,
            demo=get_settings().demo,
        )
    except service.LoginFailed as exc:
        ask_totp = exc.reason in ("mfa_required", "invalid_totp")
        page = login_page(
            params=params, csrf=form.get("csrf_token", ""), error=exc.detail, ask_totp=ask_totp
        )
        return HTMLResponse(page, 200 if exc.reason == "mfa_required" else 401)
    server = _server(session)
    result = server.create_authorization_response(oauth_request, grant_user=user, grant=grant)
    return _render(result)


@public_router.post("/auth/authorize", summary="Sign in and return to the client with a code")
async def authorize_submit(request: Request, session: SessionDep) -> Response:
    oauth_request = await _oauth_request(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = oauth_request.form.get("csrf_token", "")
    if not cookie or not hmac.compare_digest(cookie, sent):
        return HTMLResponse(
            error_page("La sesión del formulario expiró; vuelva a abrir la página de acceso."),
            403,
        )
    limiter, address = limiter_for(request), client_address(request)
    limiter.check(address)
    response = await run_in_threadpool(_sign_in, session, oauth_request)
    if response.status_code == 401:
        limiter.record_failure(address)
    return response


# --- private routes (a Bearer token is required; the app factory adds it) -------------


def _public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=user.role_list,
        institution_id=user.institution_id,
        active=user.active,
        mfa_enrolled=bool(user.totp_secret),
    )


@router.get("/auth/userinfo", summary="OpenID Connect UserInfo", response_model=UserInfo)
def userinfo(principal: PrincipalDep, session: SessionDep) -> UserInfo:
    user = session.get(User, principal.sub)
    return UserInfo(
        sub=principal.sub,
        preferred_username=user.username if user else None,
        name=user.display_name if user else None,
        roles=sorted(principal.roles),
        institution_id=principal.institution_id,
    )


def _own_user(session: Session, principal: PrincipalDep) -> User:
    user = session.get(User, principal.sub)
    if user is None:
        raise NotFound("Solo las personas usuarias pueden registrar un segundo factor.")
    return user


@router.post("/auth/mfa/enroll", summary="Start TOTP enrolment", response_model=TotpEnrolment)
def mfa_enroll(principal: PrincipalDep, session: SessionDep) -> TotpEnrolment:
    uri = service.start_totp_enrolment(session, user=_own_user(session, principal))
    return TotpEnrolment(otpauth_uri=uri)


@router.post("/auth/mfa/confirm", summary="Confirm TOTP enrolment with a first code")
def mfa_confirm(body: TotpConfirm, principal: PrincipalDep, session: SessionDep) -> dict[str, bool]:
    service.confirm_totp_enrolment(session, user=_own_user(session, principal), code=body.code)
    return {"mfa_enrolled": True}


@router.get("/api/v1/auth/users", summary="Users", response_model=list[UserPublic])
def list_users(principal: PrincipalDep, session: SessionDep) -> list[UserPublic]:
    if principal.has("platform_admin"):
        query = select(User)
    else:
        permissions.check_can_manage_users(principal, institution_id=principal.institution_id)
        query = select(User).where(User.institution_id == principal.institution_id)
    return [_public(u) for u in session.exec(query.order_by(col(User.username)).limit(1000))]


@router.post("/api/v1/auth/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, principal: PrincipalDep, session: SessionDep) -> UserPublic:
    permissions.check_can_manage_users(principal, institution_id=body.institution_id)
    permissions.check_can_grant_roles(principal, body.roles)
    user = service.create_user(
        session,
        username=body.username,
        display_name=body.display_name,
        password=body.password,
        roles=body.roles,
        institution_id=body.institution_id,
        actor=principal.sub,
    )
    return _public(user)
