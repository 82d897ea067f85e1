"""Sign-in, sign-out, language, home page and the static files of the web UI."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from frontend import flows, service
from frontend.api import ApiError, call
from frontend.dependencies import (
    SESSION_COOKIE,
    FrontendRoute,
    Page,
    PageDep,
    client_authorization,
    cookie_secure,
    safe_next,
    set_session_cookie,
    token_request,
)
from frontend.i18n import LANG_COOKIE, LANGUAGES, N_
from frontend.navigation import nav_for

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
NODE_MODULES = HERE / "node_modules"
# The browser packages served straight from node_modules (installed by `make setup`).
VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "axe.min.js": "axe-core/axe.min.js",
}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
SCOPE = "openid canaliza"


def _file(path: Path) -> Response:
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR or not path.is_file():
        raise ApiError(404, "not_found", "")
    return _file(path)


@router.get("/vendor/{name}")
async def vendor_file(name: str) -> Response:
    relative = VENDOR.get(name)
    if relative is None or not (NODE_MODULES / relative).is_file():
        raise ApiError(404, "not_found", "")
    return _file(NODE_MODULES / relative)


# --- home ---------------------------------------------------------------------------


NOTICES = {"signed_out": N_("You have signed out. Close the browser if the computer is shared.")}


@router.get("/")
async def home(page: PageDep, aviso: str | None = None) -> Response:
    notice = page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None
    if page.user is None:
        return page.render("welcome.html", notice=notice)
    entries = nav_for(page.roles)
    if entries and notice is None:
        return page.redirect(entries[0].path)
    return page.render("home.html", notice=notice, entries=entries)


# --- sign-in (authorization code + PKCE), sign-out, language -----------------------------


@router.get("/entrar")
async def sign_in(page: PageDep, request: Request, next: str | None = None) -> Response:
    """Start the authorization-code flow; the auth service shows its sign-in page."""
    settings = page.settings
    base = urlsplit(settings.base_url())
    if request.url.netloc != base.netloc and request.headers.get("x-forwarded-host") is None:
        # The session cookie must live on the host the auth service redirects back to.
        query = urlencode({"next": safe_next(next)})
        return RedirectResponse(f"{settings.base_url()}/entrar?{query}", status_code=303)
    if page.user is not None:
        return page.redirect(safe_next(next))

    start = await run_in_threadpool(
        partial(flows.start_login, page.browser, return_to=safe_next(next))
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.frontend_client_id,
            "redirect_uri": settings.frontend_callback_url(),
            "scope": SCOPE,
            "state": start.state,
            "code_challenge": start.code_challenge,
            "code_challenge_method": "S256",
        }
    )
    return page.redirect(f"/auth/authorize?{query}")


@router.get("/callback")
async def callback(
    page: PageDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """The auth service sends the browser back here with a code; swap it for tokens."""
    t = page.t
    verifier = service.pending_verifier(page.browser, state or "")
    if error or not code or verifier is None:
        message = (
            t.gettext("Sign-in was cancelled or refused.")
            if error
            else t.gettext("This sign-in link has expired. Please sign in again.")
        )
        return page.render("error.html", status=400, message=message, code="login_failed")
    answer = await token_request(
        page.runtime,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": page.settings.frontend_callback_url(),
            "code_verifier": verifier,
        },
    )
    if answer is None:
        message = t.gettext("This sign-in link has expired. Please sign in again.")
        return page.render("error.html", status=400, message=message, code="login_failed")
    info = await call(
        page.runtime, "auth", "GET", "/auth/userinfo", token=str(answer["access_token"])
    )
    if info.status_code != 200:
        message = t.gettext("Sign-in was cancelled or refused.")
        return page.render("error.html", status=400, message=message, code="login_failed")
    return_to = safe_next(page.browser.row.return_to)

    fresh = await run_in_threadpool(
        partial(
            flows.sign_in,
            page.browser,
            tokens=service.token_set(answer),
            user=info.json(),
            idle_minutes=page.settings.session_idle_minutes,
        )
    )
    response = RedirectResponse(return_to, status_code=303)
    set_session_cookie(response, fresh.raw, page.settings)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/salir")
async def sign_out(page: PageDep) -> Response:
    """Revoke the refresh token, forget the session, clear the cookie."""
    tokens = page.browser.tokens() if page.browser.signed_in else None
    if tokens and tokens.get("refresh_token"):
        await _revoke(page, str(tokens["refresh_token"]))

    await run_in_threadpool(flows.sign_out, page.browser)
    response = RedirectResponse("/?aviso=signed_out", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=cookie_secure(page.settings), httponly=True
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _revoke(page: Page, refresh_token: str) -> None:
    # Signing out locally happens anyway; an unrevoked token still expires on its own.
    with contextlib.suppress(ApiError):
        await call(
            page.runtime,
            "auth",
            "POST",
            "/auth/revoke",
            data={"token": refresh_token, "token_type_hint": "refresh_token"},
            headers={"Authorization": client_authorization(page.settings)},
        )


@router.post("/idioma")
async def switch_language(
    page: PageDep,
    language: Annotated[str, Form(max_length=8)],
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    response = page.redirect(safe_next(next))
    if language in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            samesite="lax",
            secure=cookie_secure(page.settings),
            httponly=True,
            path="/",
        )
    return response
