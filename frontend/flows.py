"""The frontend's steps on its own database (browser sessions), one unit of work each.

Every function is synchronous and opens ``db.unit_of_work`` itself: call it from a sync
function or through ``run_in_threadpool``, so SQLite's write lock is taken and released
in the same thread (ADR 0004).
"""

from __future__ import annotations

from typing import Any

from frontend import service
from frontend.database import db


def load_session(raw: str | None) -> service.BrowserSession | None:
    """The browser session of a cookie value (None: unknown or expired), read only."""
    with db.unit_of_work(write=False) as session:
        found = service.load(session, raw)
        # Detached as read: the read's rollback would expire it, and it is used afterwards.
        session.expunge_all()
        return found


def open_session(raw: str | None, idle_minutes: int) -> service.BrowserSession:
    """The browser's session, kept alive; a new one when it has none (or it expired)."""
    with db.unit_of_work() as session:
        browser = service.load(session, raw)
        if browser is None:
            return service.create(session)
        service.touch(session, browser, idle_minutes=idle_minutes)
        return browser


def start_login(browser: service.BrowserSession, *, return_to: str) -> service.LoginStart:
    """Remember a sign-in's PKCE verifier and state in the browser's session."""
    with db.unit_of_work() as session:
        found = service.load(session, browser.raw) or browser
        start = service.start_login(session, found, return_to=return_to)
        browser.row = found.row
        return start


def sign_in(
    browser: service.BrowserSession,
    *,
    tokens: dict[str, Any],
    user: dict[str, Any],
    idle_minutes: int,
) -> service.BrowserSession:
    """The signed-in session (a fresh identifier) with the user's tokens."""
    with db.unit_of_work() as session:
        found = service.load(session, browser.raw) or browser
        return service.sign_in(session, found, tokens=tokens, user=user, idle_minutes=idle_minutes)


def sign_out(browser: service.BrowserSession) -> None:
    with db.unit_of_work() as session:
        service.destroy(session, browser)


def reload_tokens(browser: service.BrowserSession) -> dict[str, Any] | None:
    """The session's tokens as stored now (another request may have refreshed them)."""
    found = load_session(browser.raw)
    if found is None:
        return None
    browser.row = found.row
    return found.tokens()


def save_tokens(browser: service.BrowserSession, tokens: dict[str, Any]) -> None:
    with db.unit_of_work() as session:
        found = service.load(session, browser.raw)
        if found is not None:
            service.store_tokens(session, found, tokens)
            browser.row = found.row


def save_draft(browser: service.BrowserSession, draft: dict[str, Any] | None) -> None:
    with db.unit_of_work() as session:
        found = service.load(session, browser.raw)
        if found is not None:
            service.set_draft(session, found, draft)
            browser.row.draft = found.row.draft


def purge_expired() -> int:
    """Forget expired browser sessions; how many."""
    with db.unit_of_work() as session:
        return service.purge_expired(session)
