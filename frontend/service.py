"""Server-side browser sessions: creation, PKCE login state, sealed tokens, rotation.

The cookie value is the only secret the browser holds. The database keeps its SHA-256
(as the key) and the OAuth tokens sealed with AES-GCM under a key derived from it, so
neither a copy of the table nor a stolen log opens a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete
from sqlmodel import Session, col

from frontend.models import WebSession
from services.clock import as_utc, utcnow

PENDING_LOGIN_MINUTES = 15
NOT_SIGNED_IN_MINUTES = 120


def _id_hash(raw: str) -> str:
    return hashlib.sha256(b"canaliza-web-session-id:" + raw.encode()).hexdigest()


def _seal_key(raw: str) -> bytes:
    return hashlib.sha256(b"canaliza-web-session-key:" + raw.encode()).digest()


def seal(raw: str, data: dict[str, Any]) -> bytes:
    """Encrypt ``data`` for the session whose cookie value is ``raw``."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_seal_key(raw)).encrypt(nonce, json.dumps(data).encode(), None)


def unseal(raw: str, blob: bytes | None) -> dict[str, Any] | None:
    """The data sealed by :func:`seal`, or None when absent or not openable."""
    if not blob:
        return None
    try:
        plain = AESGCM(_seal_key(raw)).decrypt(blob[:12], blob[12:], None)
    except Exception:
        return None
    value: dict[str, Any] = json.loads(plain)
    return value


@dataclass
class BrowserSession:
    """A loaded session: the row and the cookie value that opens it."""

    raw: str
    row: WebSession
    created: bool = False

    @property
    def signed_in(self) -> bool:
        return self.row.user_sub is not None and self.row.tokens is not None

    @property
    def roles(self) -> set[str]:
        return set(self.row.roles.split())

    def tokens(self) -> dict[str, Any] | None:
        return unseal(self.raw, self.row.tokens)


def load(session: Session, raw: str | None) -> BrowserSession | None:
    """The live session for cookie value ``raw``; expired ones are deleted."""
    if not raw or len(raw) > 128:
        return None
    row = session.get(WebSession, _id_hash(raw))
    if row is None:
        return None
    if as_utc(row.expires_at) <= utcnow():
        session.delete(row)
        return None
    return BrowserSession(raw=raw, row=row)


def create(session: Session, *, minutes: int = NOT_SIGNED_IN_MINUTES) -> BrowserSession:
    """A new anonymous session (it carries the CSRF token of the pages before sign-in)."""
    raw = secrets.token_urlsafe(32)
    row = WebSession(
        id_hash=_id_hash(raw),
        csrf_token=secrets.token_urlsafe(24),
        expires_at=utcnow() + timedelta(minutes=minutes),
    )
    session.add(row)
    return BrowserSession(raw=raw, row=row, created=True)


def touch(session: Session, browser: BrowserSession, *, idle_minutes: int) -> None:
    """Slide a signed-in session's expiry (written at most once a minute)."""
    if not browser.signed_in:
        return
    target = utcnow() + timedelta(minutes=idle_minutes)
    if target - as_utc(browser.row.expires_at) > timedelta(minutes=1):
        browser.row.expires_at = target
        session.add(browser.row)


def check_csrf(browser: BrowserSession | None, sent: str | None) -> bool:
    """The form's or header's token matches the session's (constant time)."""
    if browser is None or not sent:
        return False
    return hmac.compare_digest(browser.row.csrf_token, sent)


@dataclass
class LoginStart:
    state: str
    code_challenge: str


def start_login(session: Session, browser: BrowserSession, *, return_to: str) -> LoginStart:
    """Record a login in progress: OAuth ``state`` and the PKCE verifier (sealed)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    state = secrets.token_urlsafe(24)
    browser.row.oauth_state = state
    browser.row.pending = seal(browser.raw, {"code_verifier": verifier})
    browser.row.return_to = return_to
    browser.row.expires_at = max(
        as_utc(browser.row.expires_at), utcnow() + timedelta(minutes=PENDING_LOGIN_MINUTES)
    )
    session.add(browser.row)
    return LoginStart(state=state, code_challenge=challenge.decode())


def pending_verifier(browser: BrowserSession, state: str) -> str | None:
    """The PKCE verifier of the login whose ``state`` came back, if it is this session's."""
    expected = browser.row.oauth_state
    if not expected or not state or not hmac.compare_digest(expected, state):
        return None
    pending = unseal(browser.raw, browser.row.pending)
    return str(pending["code_verifier"]) if pending else None


def token_set(answer: dict[str, Any], *, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tokens to keep from a token-endpoint answer (a refresh may omit the refresh token)."""
    expires_at = utcnow() + timedelta(seconds=int(answer.get("expires_in", 300)))
    refresh = answer.get("refresh_token") or (previous or {}).get("refresh_token")
    return {
        "access_token": answer["access_token"],
        "refresh_token": refresh,
        "expires_at": expires_at.timestamp(),
    }


def sign_in(
    session: Session,
    browser: BrowserSession,
    *,
    tokens: dict[str, Any],
    user: dict[str, Any],
    idle_minutes: int,
) -> BrowserSession:
    """Replace the anonymous session with a signed-in one under a new cookie (no fixation)."""
    session.delete(browser.row)
    fresh = create(session, minutes=idle_minutes)
    fresh.row.user_sub = str(user["sub"])[:80]
    fresh.row.username = (user.get("preferred_username") or "")[:80] or None
    fresh.row.display_name = (user.get("name") or "")[:200] or None
    fresh.row.roles = " ".join(sorted(user.get("roles") or []))[:400]
    fresh.row.institution_id = user.get("institution_id")
    store_tokens(session, fresh, tokens)
    return fresh


def store_tokens(session: Session, browser: BrowserSession, tokens: dict[str, Any]) -> None:
    browser.row.tokens = seal(browser.raw, tokens)
    browser.row.access_expires_at = datetime.fromtimestamp(float(tokens["expires_at"]), tz=UTC)
    session.add(browser.row)


def set_draft(session: Session, browser: BrowserSession, draft: dict[str, Any] | None) -> None:
    browser.row.draft = json.dumps(draft) if draft is not None else None
    session.add(browser.row)


def get_draft(browser: BrowserSession) -> dict[str, Any] | None:
    if not browser.row.draft:
        return None
    value: dict[str, Any] = json.loads(browser.row.draft)
    return value


def destroy(session: Session, browser: BrowserSession) -> None:
    session.execute(delete(WebSession).where(col(WebSession.id_hash) == browser.row.id_hash))


def purge_expired(session: Session) -> int:
    """Delete expired sessions; returns how many."""
    result = session.execute(delete(WebSession).where(col(WebSession.expires_at) <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
