"""What every page handler gets: the browser session, the language, the API, rendering.

``PageDep`` loads (or starts) the browser session and the language; ``UserDep`` also
requires a signed-in user. ``FrontendRoute`` adds the security headers to every answer,
turns a lost session into a trip to the sign-in page and an API error into a page in the
user's language, and refuses form posts without the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from frontend import flows, service
from frontend.api import Api, ApiError, NotSignedIn, call, raise_for_answer
from frontend.i18n import LANG_COOKIE, N_, Translator, pick_language
from frontend.navigation import NOTIFIED, nav_for
from services.app import Runtime, get_runtime
from services.settings import Settings

log = logging.getLogger("canaliza.frontend")

TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION_COOKIE = "canaliza_session"
CSRF_HEADER = "x-csrf-token"
REFRESH_MARGIN_SECONDS = 60

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
# X-Content-Type-Options: nosniff is set on every answer by the kernel already.
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# One refresh at a time per session (rotation would otherwise revoke the family).
_refresh_locks: dict[str, asyncio.Lock] = {}


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


def cookie_secure(settings: Settings) -> bool:
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return settings.base_url().startswith("https://")


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target[:500]


@dataclass
class Page:
    """One request's context."""

    request: Request
    runtime: Runtime
    browser: service.BrowserSession
    t: Translator
    cookies_to_set: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def user(self) -> service.BrowserSession | None:
        return self.browser if self.browser.signed_in else None

    @property
    def roles(self) -> set[str]:
        return self.browser.roles if self.browser.signed_in else set()

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    @property
    def api(self) -> Api:
        return Api(self.runtime, self.access_token)

    async def access_token(self) -> str:
        """A valid access token, refreshed server-side when it is about to expire."""
        tokens = self.browser.tokens() if self.browser.signed_in else None
        if not tokens:
            raise NotSignedIn
        if float(tokens["expires_at"]) - time.time() > REFRESH_MARGIN_SECONDS:
            return str(tokens["access_token"])
        key = self.browser.row.id_hash
        lock = _refresh_locks.setdefault(key, asyncio.Lock())
        try:
            return await self._refresh(lock, tokens)
        finally:
            if not lock.locked():
                _refresh_locks.pop(key, None)

    async def _refresh(self, lock: asyncio.Lock, tokens: dict[str, Any]) -> str:
        async with lock:
            # Another request of this session may have refreshed while we waited.
            fresh = await run_in_threadpool(self._reload_tokens)
            if fresh and float(fresh["expires_at"]) - time.time() > REFRESH_MARGIN_SECONDS:
                return str(fresh["access_token"])
            tokens = fresh or tokens
            if not tokens.get("refresh_token"):
                raise NotSignedIn
            answer = await token_request(
                self.runtime,
                {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            )
            if answer is None:
                raise NotSignedIn
            new = service.token_set(answer, previous=tokens)
            await run_in_threadpool(self._save_tokens, new)
            return str(new["access_token"])

    def _reload_tokens(self) -> dict[str, Any] | None:
        return flows.reload_tokens(self.browser)

    def _save_tokens(self, tokens: dict[str, Any]) -> None:
        flows.save_tokens(self.browser, tokens)

    async def download(
        self, service_name: str, path: str, params: dict[str, str], filename: str
    ) -> Response:
        """A file from a service, passed to the browser (which holds no token)."""
        token = await self.access_token()
        resp = await call(self.runtime, service_name, "GET", path, token=token, params=params)
        if resp.status_code == 401:
            raise NotSignedIn
        raise_for_answer(resp)
        disposition = (
            resp.headers.get("content-disposition") or f'attachment; filename="{filename}"'
        )
        return self.finish(
            Response(
                resp.content,
                media_type=resp.headers.get("content-type", "application/octet-stream"),
                headers={"Content-Disposition": disposition},
            )
        )

    def save_draft(self, draft: dict[str, Any] | None) -> Coroutine[Any, Any, None]:
        return run_in_threadpool(flows.save_draft, self.browser, draft)

    def draft(self) -> dict[str, Any] | None:
        return service.get_draft(self.browser)

    # --- answers ----------------------------------------------------------------------

    def context(self, **values: Any) -> dict[str, Any]:
        t = self.t
        return {
            "request": self.request,
            "page": self,
            "t": t,
            "_": t.gettext,
            "ngettext": t.ngettext,
            "lang": t.language,
            "csrf_token": self.browser.row.csrf_token,
            "user": self.user,
            "nav": nav_for(self.roles) if self.user else [],
            "notify": bool(self.user and self.roles & NOTIFIED),
            "current_path": self.request.url.path,
            **values,
        }

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        html = env.get_template(template).render(self.context(**values))
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str, status: int = 303) -> Response:
        if self.is_htmx:
            # htmx follows 3xx itself and swaps the result in; a full navigation is meant.
            return self.finish(Response(status_code=204, headers={"HX-Redirect": url}))
        return self.finish(RedirectResponse(url, status_code=status))

    def finish(self, response: Response) -> Response:
        if self.browser.created:
            set_session_cookie(response, self.browser.raw, self.settings)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Vary", "Cookie")
        return response


def set_session_cookie(response: Response, raw: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(settings),
        path="/",
        max_age=settings.session_idle_minutes * 60,
    )


def client_authorization(settings: Settings) -> str:
    """HTTP Basic credentials of the frontend's confidential OAuth client (RFC 6749 §2.3.1)."""
    basic = base64.b64encode(
        f"{quote(settings.frontend_client_id, safe='')}:"
        f"{quote(settings.frontend_client_secret, safe='')}".encode()
    ).decode()
    return f"Basic {basic}"


async def token_request(runtime: Runtime, form: dict[str, str]) -> dict[str, Any] | None:
    """POST to the token endpoint as the frontend's confidential client; None on refusal."""
    try:
        resp = await call(
            runtime,
            "auth",
            "POST",
            "/auth/token",
            data=form,
            headers={"Authorization": client_authorization(runtime.settings)},
        )
    except ApiError:
        return None
    if resp.status_code != 200:
        log.info("token endpoint refused the frontend: %s %s", resp.status_code, resp.text[:200])
        return None
    answer: dict[str, Any] = resp.json()
    return answer


def _open_session(raw: str | None, idle_minutes: int) -> service.BrowserSession:
    return flows.open_session(raw, idle_minutes)


async def get_page(request: Request) -> Page:
    runtime = get_runtime(request.app)
    cached: Page | None = getattr(request.state, "page", None)
    if cached is not None:
        return cached
    browser = await run_in_threadpool(
        _open_session, request.cookies.get(SESSION_COOKIE), runtime.settings.session_idle_minutes
    )
    language = pick_language(request.cookies.get(LANG_COOKIE))
    page = Page(request=request, runtime=runtime, browser=browser, t=Translator(language))
    request.state.page = page
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if browser.created or not service.check_csrf(browser, sent):
            raise CsrfRefused
    return page


async def get_user_page(page: Annotated[Page, Depends(get_page)]) -> Page:
    if not page.browser.signed_in:
        raise NotSignedIn
    return page


PageDep = Annotated[Page, Depends(get_page)]
UserDep = Annotated[Page, Depends(get_user_page)]


def require_role(*roles: str) -> Callable[..., Coroutine[Any, Any, Page]]:
    """A page for people with one of ``roles`` (others get a polite 403 page)."""

    async def dependency(page: UserDep) -> Page:
        if not page.has(*roles):
            raise ApiError(403, "forbidden", "")
        return page

    return dependency


# An id a service may quote in its detail: a person never reads one.
_IDS = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# What the error page's heading says, by the answer's status.
ERROR_TITLES = {
    400: N_("The request could not be read"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("It changed in the meantime"),
    410: N_("No longer available"),
    413: N_("Too large"),
    422: N_("Please check the data"),
    429: N_("Too many attempts"),
    503: N_("Service unavailable"),
}


def error_message(t: Translator, exc: ApiError) -> str:
    """The sentence to show for an API error, in the user's language."""
    known = {
        "service_unavailable": t.gettext(
            "The service is not responding right now. Please try again in a few moments."
        ),
        "forbidden": t.gettext("Your role does not allow this action."),
        "not_found": t.gettext("We could not find what you were looking for."),
        "beds_unavailable": t.gettext(
            "Those beds were just taken. Search again to see what is free now."
        ),
    }
    if exc.error in known:
        return known[exc.error]
    if exc.status == 404:
        # Whatever the service called it, a person reads one sentence, never an id.
        return known["not_found"]
    detail = _IDS.sub("", exc.detail).replace("«»", "").strip() if exc.detail else ""
    if detail and t.language == "es-MX":
        return detail  # the services write their details in Spanish
    if detail:
        return t.gettext("The platform refused the request: %(detail)s", detail=detail)
    return t.gettext("Something went wrong (%(code)s). Please try again.", code=exc.error)


class FrontendRoute(APIRoute):
    """Security headers on every answer; lost sessions, refusals and API errors as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except NotSignedIn:
                response = await _to_sign_in(request)
            except CsrfRefused:
                response = await _error_page(
                    request,
                    403,
                    "csrf",
                    lambda t: t.gettext(
                        "This form has expired or did not come from Canaliza. "
                        "Reload the page and try again."
                    ),
                )
            except ApiError as exc:
                refusal = exc
                response = await _error_page(
                    request, exc.status, exc.error, lambda t: error_message(t, refusal)
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return route


async def _to_sign_in(request: Request) -> Response:
    page: Page | None = getattr(request.state, "page", None)
    target = request.url.path if request.method == "GET" else "/"
    url = "/entrar?next=" + quote(safe_next(target), safe="/")
    if page is not None:
        return page.redirect(url, status=303)
    return RedirectResponse(url, status_code=303)


async def _error_page(
    request: Request, status: int, code: str, message: Callable[[Translator], str]
) -> Response:
    page: Page | None = getattr(request.state, "page", None)
    if page is None:
        page = await get_page_without_csrf(request)
    status = status if 400 <= status < 600 else 502
    template = "_error.html" if page.is_htmx else "error.html"
    title = ERROR_TITLES.get(status, N_("Something went wrong"))
    return page.render(template, status=status, message=message(page.t), code=code, title=title)


async def get_page_without_csrf(request: Request) -> Page:
    runtime = get_runtime(request.app)
    browser = await run_in_threadpool(
        _open_session, request.cookies.get(SESSION_COOKIE), runtime.settings.session_idle_minutes
    )
    language = pick_language(request.cookies.get(LANG_COOKIE))
    page = Page(request=request, runtime=runtime, browser=browser, t=Translator(language))
    request.state.page = page
    return page


__all__ = ["ApiError", "raise_for_answer"]
