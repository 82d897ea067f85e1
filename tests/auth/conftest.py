"""Fixtures of the auth service tests: an app with the auth service and a protected route."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import Session

from auth import main as auth_main
from auth.database import db, outbox
from services.app import ServiceSpec, create_app
from services.settings import get_settings
from tests.kernel import sample


@pytest.fixture
def make_app(tmp_path, monkeypatch) -> Iterator[Callable[..., FastAPI]]:
    """``make_app(demo=True)``: the auth service plus the kernel's sample whoami route."""

    def _make(*, demo: bool = True, **env: str) -> FastAPI:
        monkeypatch.setenv("CANALIZA_DEMO", "1" if demo else "0")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        db.configure(f"sqlite:///{tmp_path}/auth.db")
        protected = ServiceSpec(name="sample", routers=[sample.router])
        return create_app([auth_main.service(), protected])

    yield _make
    db.dispose()


def event_types() -> list[str]:
    """Types of the events the auth service wrote to its outbox, in order."""
    with Session(db.engine) as s:
        rows = s.execute(select(outbox.table.c.body).order_by(outbox.table.c.seq)).all()
    return [row.body["type"] for row in rows]


def events(kind: str) -> list[dict[str, Any]]:
    with Session(db.engine) as s:
        rows = s.execute(select(outbox.table.c.body).order_by(outbox.table.c.seq)).all()
    return [row.body for row in rows if row.body["type"] == kind]


def password_form(username: str, password: str | None = None) -> dict[str, str]:
    return {
        "grant_type": "password",
        "username": username,
        "password": password or get_settings().demo_password,
        "client_id": "canaliza-cli",
    }


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def websocket_first_reply(app: Any, path: str, token: str) -> dict[str, Any]:
    """Drive the ASGI app as a WebSocket client: authenticate, return the first message."""
    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": json.dumps({"type": "auth", "token": token})},
    ]
    sent: list[dict[str, Any]] = []
    got_reply = asyncio.Event()
    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await disconnect.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] in ("websocket.send", "websocket.close"):
            got_reply.set()

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "state": {},
    }
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(got_reply.wait(), 20)
    disconnect.set()
    await asyncio.wait_for(task, 20)
    texts = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
    closes = [m.get("code") for m in sent if m["type"] == "websocket.close"]
    return {"message": texts[0] if texts else None, "close": closes[0] if closes else None}
