"""The auth service's workflows: each opens its unit of work in the caller's thread.

A router handler parses the request and calls one of these (``run_in_threadpool`` from an
async handler): the OAuth endpoints, the password sign-in, the federated sign-in.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session, col, select
from starlette.datastructures import Headers

from auth import permissions, service
from auth.database import db
from auth.federation import FederationRefused, Provider, provision_user
from auth.models import User
from auth.oauth import CanalizaAuthorizationServer, StarletteOAuth2Request, require_pkce
from auth.oauth import Response as OAuthResponse
from auth.pages import OAUTH_PARAMS, error_page, html_page, login_page
from auth.schemas import TemporaryPassword, UserPublic
from services.errors import Conflict
from services.pages import after, page_key, split_page
from services.settings import get_settings
from services.tokens import Principal
from services.vocabulary import UserRole

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render(result: OAuthResponse) -> Response:
    """Authlib's answer as a Starlette response."""
    headers = {k: v for k, v in result.headers if k.lower() != "content-type"}
    if result.status == 302:
        return RedirectResponse(headers.pop("Location"), status_code=302, headers=headers)
    return JSONResponse(result.body, result.status, headers={**headers, **NO_STORE})


def authorize_error(exc: Exception) -> Response:
    description = getattr(exc, "description", "") or "solicitud inválida"
    return html_page(error_page(f"La solicitud de autorización no es válida ({description})."), 400)


def federation_page(detail: str, status: int) -> HTMLResponse:
    return html_page(error_page(detail), status)


def public_user(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=user.role_list,
        institution_id=user.institution_id,
        active=user.active,
        mfa_enrolled=bool(user.totp_secret),
    )


def users_page(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[UserPublic], str | None]:
    """A page of the users the caller manages (every user for a platform admin, else her
    institution's), by username then id, and the cursor of the next page."""
    if principal.has(UserRole.PLATFORM_ADMIN):
        query = select(User)
    else:
        permissions.ensure_can_manage_users(principal, institution_id=principal.institution_id)
        query = select(User).where(col(User.institution_id) == principal.institution_id)
    order = [col(User.username), col(User.id)]
    after_key = page_key(cursor, str, str)
    if after_key is not None:
        query = query.where(after(order, after_key))
    found = session.exec(query.order_by(*order).limit(limit + 1)).all()
    users, next_cursor = split_page(found, limit, lambda u: (u.username, u.id))
    return [public_user(u) for u in users], next_cursor


def _managed_user(session: Session, principal: Principal, user_id: str) -> User:
    """A user the principal may administer (her institution's, or any for the platform)."""
    user = service.get_user(session, user_id)
    permissions.ensure_can_manage_users(principal, institution_id=user.institution_id)
    return user


def set_user_active(principal: Principal, *, user_id: str, active: bool) -> UserPublic:
    """Deactivate or reactivate an account; nobody deactivates her own."""
    with db.unit_of_work() as session:
        user = _managed_user(session, principal, user_id)
        if not active and user.id == principal.sub:
            raise Conflict("No puede desactivar su propia cuenta.", code="own_account")
        service.set_active(session, user=user, active=active, actor=principal.sub)
        return public_user(user)


def reset_password(principal: Principal, *, user_id: str) -> TemporaryPassword:
    """A new temporary password, shown once to the administrator (stored only hashed);
    any lockout is lifted."""
    secret = service.temporary_password()
    with db.unit_of_work() as session:
        user = _managed_user(session, principal, user_id)
        if not user.active:
            raise Conflict(
                "La cuenta está desactivada: reactívela antes de restablecer su contraseña.",
                code="user_inactive",
            )
        service.set_password(
            session, user=user, password=secret, actor=principal.sub, temporary=True
        )
        return TemporaryPassword(username=user.username, temporary_password=secret)


def _server(session: Session) -> CanalizaAuthorizationServer:
    return CanalizaAuthorizationServer(session, get_settings())


def validate_authorization(session: Session, oauth_request: StarletteOAuth2Request) -> Any:
    """The consent grant of an authorization request (raises OAuth2Error; PKCE required)."""
    try:
        grant = _server(session).get_consent_grant(oauth_request)
    except ValueError as exc:
        # A redirect_uri the URL parser refuses, or whose text authlib will not put in an
        # error description (a backslash, a quote): the same 400 page as any other refusal,
        # and never a redirect to it.
        raise InvalidRequestError("redirect_uri no valida") from exc
    require_pkce(oauth_request)
    return grant


def check_authorization(oauth_request: StarletteOAuth2Request) -> Response | None:
    """None when the authorization request is valid, else the error page (a read)."""
    with db.unit_of_work(write=False) as session:
        try:
            validate_authorization(session, oauth_request)
        except OAuth2Error as exc:
            return authorize_error(exc)
    return None


def token_response(oauth_request: StarletteOAuth2Request) -> Response:
    """The token endpoint: one write transaction (tokens, counters, events)."""
    with db.unit_of_work() as session:
        return render(_server(session).create_token_response(oauth_request))


def endpoint_response(name: str, oauth_request: StarletteOAuth2Request) -> Response:
    """The revocation or introspection endpoint, in one write transaction."""
    with db.unit_of_work() as session:
        return render(_server(session).create_endpoint_response(name, oauth_request))


def sign_in(oauth_request: StarletteOAuth2Request) -> Response:
    """The sign-in form: credentials checked, counters and events committed, a code issued."""
    with db.unit_of_work() as session:
        try:
            grant = validate_authorization(session, oauth_request)
        except OAuth2Error as exc:
            return authorize_error(exc)
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
                address=oauth_request.client_host,
            )
        except service.LoginFailed as exc:
            # The failure's counters and events are committed with the error page.
            ask_totp = exc.reason in ("mfa_required", "invalid_totp")
            page = login_page(
                params=params, csrf=form.get("csrf_token", ""), error=exc.detail, ask_totp=ask_totp
            )
            return html_page(page, 200 if exc.reason == "mfa_required" else 401)
        if user.password_change_required:
            problem = service.new_password_problem(
                form.get("new_password", ""),
                form.get("new_password_again", ""),
                current=form.get("password", ""),
            )
            if problem is not None:
                page = login_page(
                    params=params,
                    csrf=form.get("csrf_token", ""),
                    error=problem,
                    ask_totp=bool(form.get("totp")),
                    ask_new_password=True,
                )
                asked = not form.get("new_password")
                return html_page(page, 200 if asked else 422)
            service.set_password(
                session, user=user, password=form.get("new_password", ""), actor=user.id
            )
        result = _server(session).create_authorization_response(
            oauth_request, grant_user=user, grant=grant
        )
        return render(result)


def finish_federated_sign_in(
    provider: Provider, claims: dict[str, Any], params: dict[str, str]
) -> Response:
    """Provision the local account and answer the Canaliza client with a code.

    A refused federation still commits its failure event, so the answer is returned from
    inside the unit of work rather than raised out of it.
    """
    base = get_settings().base_url()
    with db.unit_of_work() as session:
        try:
            user = provision_user(
                session, provider=provider, claims=claims, demo=get_settings().demo
            )
        except FederationRefused as exc:
            return federation_page(exc.detail, 403)
        oauth_request = StarletteOAuth2Request(
            method="POST",
            url=f"{base}/auth/authorize",
            headers=Headers(),
            query=[],
            form=list(params.items()),
        )
        try:
            grant = validate_authorization(session, oauth_request)
        except OAuth2Error as exc:
            return authorize_error(exc)
        result = _server(session).create_authorization_response(
            oauth_request, grant_user=user, grant=grant
        )
        return render(result)
