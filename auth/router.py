"""HTTP layer of the auth service: OAuth/OIDC endpoints (public) and user routes (private)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

import httpx
from authlib.integrations.base_client import OAuthError
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from joserfc.errors import JoseError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from auth import flows, institutions, permissions, service
from auth.database import db
from auth.dependencies import ReadSessionDep
from auth.federation import FEDERATION_KEY, PENDING_KEY, Federation
from auth.keys import public_jwks
from auth.models import User
from auth.oauth import SUPPORTED_SCOPES, StarletteOAuth2Request
from auth.pages import OAUTH_PARAMS, error_page, html_page, login_page
from auth.ratelimit import RATE_LIMITER_KEY, RateLimiter, client_address
from auth.schemas import (
    ActorPublic,
    TemporaryPassword,
    TotpConfirm,
    TotpEnrolment,
    UserCreate,
    UserInfo,
    UserPublic,
)
from services.app import get_runtime
from services.errors import Forbidden
from services.pages import PageCursor, PageLimit, announce_next
from services.security import PrincipalDep
from services.settings import get_settings

public_router = APIRouter(tags=["auth"])
router = APIRouter(tags=["auth"])

CSRF_COOKIE = "canaliza_csrf"
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
        client_host=client_address(request.client.host if request.client else None),
    )


def throttle(request: Request) -> None:
    """Per-address rate limit of the credential endpoints (429 with Retry-After)."""
    limiter = get_runtime(request.app).state.get(RATE_LIMITER_KEY)
    if isinstance(limiter, RateLimiter):
        limiter.hit(client_address(request.client.host if request.client else None))


Throttled = [Depends(throttle)]


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
def jwks(session: ReadSessionDep) -> JSONResponse:
    return JSONResponse(public_jwks(session), headers={"Cache-Control": "public, max-age=60"})


@public_router.post(
    "/auth/token", summary="OAuth 2 token endpoint (form-encoded)", dependencies=Throttled
)
async def token(request: Request) -> Response:
    oauth_request = await _oauth_request(request)
    return await run_in_threadpool(flows.token_response, oauth_request)


@public_router.post("/auth/revoke", summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    oauth_request = await _oauth_request(request)
    return await run_in_threadpool(flows.endpoint_response, "revocation", oauth_request)


@public_router.post("/auth/introspect", summary="Token introspection (RFC 7662)")
async def introspect(request: Request) -> Response:
    oauth_request = await _oauth_request(request)
    return await run_in_threadpool(flows.endpoint_response, "introspection", oauth_request)


@public_router.get("/auth/authorize", summary="Authorization endpoint: the sign-in page")
async def authorize_page(request: Request) -> Response:
    oauth_request = await _oauth_request(request)
    refused = await run_in_threadpool(flows.check_authorization, oauth_request)
    if refused is not None:
        return refused
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    providers = [(p.key, p.name) for p in _federation(request).providers.values()]
    page = login_page(params=oauth_request.payload.data, csrf=csrf, providers=providers)
    resp = html_page(page)
    resp.set_cookie(
        CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/auth/authorize", max_age=900
    )
    return resp


@public_router.post(
    "/auth/authorize",
    summary="Sign in and return to the client with a code",
    dependencies=Throttled,
)
async def authorize_submit(request: Request) -> Response:
    oauth_request = await _oauth_request(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = oauth_request.form.get("csrf_token", "")
    if not cookie or not hmac.compare_digest(cookie, sent):
        return html_page(
            error_page("La sesión del formulario expiró; vuelva a abrir la página de acceso."),
            403,
        )
    return await run_in_threadpool(flows.sign_in, oauth_request)


# --- private routes (a Bearer token is required; the app factory adds it) -------------


@router.get("/auth/userinfo", summary="OpenID Connect UserInfo", response_model=UserInfo)
def userinfo(principal: PrincipalDep, session: ReadSessionDep) -> UserInfo:
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
        # A client-credentials token has no account to attach a second factor to.
        raise Forbidden(
            "Solo las personas usuarias pueden registrar un segundo factor.", code="forbidden_role"
        )
    return user


@router.post("/auth/mfa/enroll", summary="Start TOTP enrolment", response_model=TotpEnrolment)
def mfa_enroll(principal: PrincipalDep) -> TotpEnrolment:
    with db.unit_of_work() as session:
        uri = service.start_totp_enrolment(session, user=_own_user(session, principal))
    return TotpEnrolment(otpauth_uri=uri)


@router.post("/auth/mfa/confirm", summary="Confirm TOTP enrolment with a first code")
def mfa_confirm(body: TotpConfirm, principal: PrincipalDep) -> dict[str, bool]:
    with db.unit_of_work() as session:
        service.confirm_totp_enrolment(session, user=_own_user(session, principal), code=body.code)
    return {"mfa_enrolled": True}


@router.get("/api/v1/auth/users", summary="Users", response_model=list[UserPublic])
def list_users(
    principal: PrincipalDep,
    session: ReadSessionDep,
    request: Request,
    response: Response,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> list[UserPublic]:
    """The users the caller manages, by username; the next page's cursor in headers."""
    users, next_cursor = flows.users_page(session, principal, limit=limit, cursor=cursor)
    announce_next(request, response, next_cursor)
    return users


@router.get("/api/v1/auth/actors", summary="Who acts: names for the audit trail",
            response_model=list[ActorPublic])  # fmt: skip
def list_actors(principal: PrincipalDep, session: ReadSessionDep) -> list[ActorPublic]:
    """Every user's name and institution (nothing else), so oversight reads the audit
    trail by who acted instead of by account ids."""
    permissions.ensure_can_read_actors(principal)
    users = session.exec(select(User).order_by(col(User.display_name)).limit(10000))
    return [
        ActorPublic(id=u.id, display_name=u.display_name, institution_id=u.institution_id)
        for u in users
    ]


@router.post("/api/v1/auth/users", status_code=201, response_model=UserPublic)
async def create_user(body: UserCreate, principal: PrincipalDep, request: Request) -> UserPublic:
    permissions.ensure_can_manage_users(principal, institution_id=body.institution_id)
    permissions.ensure_can_grant_roles(principal, body.roles)
    if body.institution_id:
        # The roles must fit the institution's type: make sure auth knows the institution.
        await institutions.learn_if_unknown(get_runtime(request.app), body.institution_id)

    def _create() -> UserPublic:
        with db.unit_of_work() as session:
            user = service.create_user(
                session,
                username=body.username,
                display_name=body.display_name,
                password=body.password,
                roles=body.roles,
                institution_id=body.institution_id,
                actor=principal.sub,
            )
            return flows.public_user(user)

    return await run_in_threadpool(_create)


UserId = Annotated[str, Path(max_length=64)]


@router.post("/api/v1/auth/users/{user_id}/deactivate", response_model=UserPublic)
def deactivate_user(user_id: UserId, principal: PrincipalDep) -> UserPublic:
    """The account can no longer sign in nor refresh a session."""
    return flows.set_user_active(principal, user_id=user_id, active=False)


@router.post("/api/v1/auth/users/{user_id}/reactivate", response_model=UserPublic)
def reactivate_user(user_id: UserId, principal: PrincipalDep) -> UserPublic:
    return flows.set_user_active(principal, user_id=user_id, active=True)


@router.post("/api/v1/auth/users/{user_id}/password-reset", response_model=TemporaryPassword)
def reset_password(user_id: UserId, principal: PrincipalDep) -> TemporaryPassword:
    """A new temporary password, answered once (only its hash is kept)."""
    return flows.reset_password(principal, user_id=user_id)


# --- federation: an institution's own OIDC provider (public: the sign-in itself) ---------


def _federation(request: Request) -> Federation:
    federation = get_runtime(request.app).state.get(FEDERATION_KEY)
    return federation if isinstance(federation, Federation) else Federation({})


@public_router.get(
    "/auth/federation/{institution_key}/login",
    summary="Sign in through the institution's own OpenID provider",
)
async def federation_login(institution_key: str, request: Request) -> Response:
    """Takes the Canaliza authorization request (same query as ``/auth/authorize``)."""
    federation = _federation(request)
    provider = federation.providers.get(institution_key)
    if provider is None:
        return flows.federation_page("Esa institución no tiene un proveedor de identidad.", 404)
    oauth_request = await _oauth_request(request)
    refused = await run_in_threadpool(flows.check_authorization, oauth_request)
    if refused is not None:
        return refused
    params = {k: v for k, v in oauth_request.payload.data.items() if k in OAUTH_PARAMS}
    request.session[PENDING_KEY] = {"provider": provider.key, "params": params}
    callback = f"{get_settings().base_url()}/auth/federation/{provider.key}/callback"
    try:
        response: Response = await federation.client(provider.key).authorize_redirect(
            request, callback
        )
    except (httpx.HTTPError, ValueError, KeyError, RuntimeError):
        return flows.federation_page(
            "El proveedor de identidad de la institución no responde; intente más tarde.", 502
        )
    return response


@public_router.get(
    "/auth/federation/{institution_key}/callback",
    summary="Return from the institution's OpenID provider",
)
async def federation_callback(institution_key: str, request: Request) -> Response:
    federation = _federation(request)
    provider = federation.providers.get(institution_key)
    pending = request.session.pop(PENDING_KEY, None)
    if provider is None or not isinstance(pending, dict) or pending.get("provider") != provider.key:
        return flows.federation_page(
            "La sesión de acceso expiró o no corresponde; vuelva a iniciar sesión.", 400
        )
    client = federation.client(provider.key)
    try:
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if not claims:
            raise OAuthError(description="the provider sent no ID token")
        if provider.fetch_userinfo:
            extra = dict(await client.userinfo(token=token))
            if extra.get("sub") != claims.get("sub"):
                raise OAuthError(description="userinfo names another subject")
            claims = {**extra, **claims}
    except (OAuthError, JoseError, httpx.HTTPError, ValueError, KeyError) as exc:
        description = getattr(exc, "description", None) or type(exc).__name__
        return flows.federation_page(
            f"El proveedor de identidad no confirmó la sesión ({description}).", 403
        )
    return await run_in_threadpool(
        flows.finish_federated_sign_in, provider, claims, pending["params"]
    )
