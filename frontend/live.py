"""The browser's live capacity feed, proxied so the token never reaches the browser.

The browser opens ``/live`` (same origin; the session cookie identifies it; a foreign
``Origin`` is refused). The frontend opens capacity's ``/api/v1/capacity/live`` with the
user's access token as the first message, forwards the browser's ``subscribe``/``ping``
and every message from capacity, and re-authenticates upstream before the token expires.
In the main job the upstream is the same app, reached in process through ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Send

from frontend import flows, service
from frontend.api import NotSignedIn
from frontend.dependencies import SESSION_COOKIE, Page
from frontend.i18n import LANG_COOKIE, Translator, pick_language
from services.aio import until_first_done
from services.app import INTERNAL_BASE_URL, Runtime, get_runtime

log = logging.getLogger("canaliza.frontend.live")

router = APIRouter(include_in_schema=False)

UPSTREAM_PATH = "/api/v1/capacity/live"
BROWSER_TYPES = frozenset({"subscribe", "ping", "pong"})
MAX_MESSAGE = 8192
REAUTH_CHECK_SECONDS = 30


class Upstream(Protocol):
    close_code: int | None
    close_reason: str

    async def send(self, text: str) -> None: ...
    async def recv(self) -> str | None: ...
    async def close(self) -> None: ...


class InProcessUpstream:
    """A WebSocket to an ASGI app in this process (the main job).

    With ``forward`` (the browser's ASGI send), each text message the app sends is handed
    to it as it is, in the app's own send: no queue, no task wake-up, no copy of the
    message per browser, so capacity's fan-out by filter class reaches the browsers with
    one ASGI send more than it reaches its own sockets (ADR 32). A browser that does not
    read makes the feed's send wait, so capacity's bound (1013, then resume) applies to it.
    """

    def __init__(self, app: Any, path: str, forward: Send | None = None) -> None:
        self.app = app
        self.path = path
        self.forward = forward
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""

    async def open(self) -> None:
        host = urlsplit(INTERNAL_BASE_URL).netloc
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", host.encode())],
            "client": ("127.0.0.1", 0),
            "server": (host, 80),
            "subprotocols": [],
            "state": {},
        }
        await self.inbox.put({"type": "websocket.connect"})
        self.task = asyncio.ensure_future(self.app(scope, self.inbox.get, self._from_app))
        first = await self.outbox.get()
        if first["type"] != "websocket.accept":
            await self.close()
            raise ConnectionError(f"upstream refused: {first}")

    async def _from_app(self, message: Message) -> None:
        # Data straight to the browser; the accept and the close are this proxy's to read.
        if (
            self.forward is not None
            and message["type"] == "websocket.send"
            and message.get("text") is not None
        ):
            await self.forward(message)
        else:
            await self.outbox.put(message)

    async def send(self, text: str) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": text})

    async def recv(self) -> str | None:
        while True:
            message = await self.outbox.get()
            if message["type"] == "websocket.send":
                text = message.get("text")
                if text is not None:
                    return str(text)
                continue
            if message["type"] == "websocket.close":
                self.closed = True
                self.close_code = int(message.get("code") or 1000)
                self.close_reason = str(message.get("reason") or "")
                return None

    async def close(self) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout=2)
            except BaseException:
                self.task.cancel()
                with contextlib.suppress(BaseException):
                    await self.task


class RemoteUpstream:
    """A WebSocket to capacity running apart (the topology)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None
        self.close_code: int | None = None
        self.close_reason = ""

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.conn = await connect(self.url, open_timeout=5, max_size=2**22)

    async def send(self, text: str) -> None:
        await self.conn.send(text)

    async def recv(self) -> str | None:
        from websockets.exceptions import ConnectionClosed

        try:
            data = await self.conn.recv()
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                self.close_code, self.close_reason = closed.rcvd.code, closed.rcvd.reason
            return None
        return data if isinstance(data, str) else data.decode()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close()


async def open_upstream(
    runtime: Runtime, forward: Send | None = None
) -> InProcessUpstream | RemoteUpstream:
    """Capacity's live socket: in process when capacity is mounted here (its text messages
    then go as they are to ``forward``, the browser's ASGI send, when given), else over
    the network."""
    base, transport = runtime.transport_for("capacity")
    upstream: InProcessUpstream | RemoteUpstream
    if transport is not None:
        upstream = InProcessUpstream(runtime.app, UPSTREAM_PATH, forward)
    else:
        upstream = RemoteUpstream("ws" + base.removeprefix("http") + UPSTREAM_PATH)
    await upstream.open()
    return upstream


def origin_allowed(websocket: WebSocket, runtime: Runtime) -> bool:
    """Same-origin only: the public URL, or the host the browser itself connected to."""
    origin = websocket.headers.get("origin")
    if not origin:
        return False
    settings = runtime.settings
    allowed = {settings.base_url().rstrip("/")}
    host = websocket.headers.get("host")
    secure = websocket.url.scheme == "wss"
    if settings.trust_forwarded_host:
        # Only a proxy that overwrites these headers may speak for the browser.
        host = websocket.headers.get("x-forwarded-host") or host
        secure = secure or websocket.headers.get("x-forwarded-proto") in ("https", "wss")
    if host:
        allowed.add(f"{'https' if secure else 'http'}://{host}")
    return origin.rstrip("/") in allowed


def _load(raw: str | None) -> service.BrowserSession | None:
    return flows.load_session(raw)


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    runtime = get_runtime(websocket.app)
    if not origin_allowed(websocket, runtime):
        await websocket.close(code=4403)
        return
    browser = await run_in_threadpool(_load, websocket.cookies.get(SESSION_COOKIE))
    if browser is None or not browser.signed_in:
        await websocket.close(code=4401)
        return
    t = Translator(pick_language(websocket.cookies.get(LANG_COOKIE)))
    # A Page without a request: only its token handling is used here.
    page = Page(request=None, runtime=runtime, browser=browser, t=t)  # type: ignore[arg-type]
    await websocket.accept()
    try:
        token = await page.access_token()
        # In process, capacity's messages go to the browser's socket as they are.
        upstream = await open_upstream(runtime, forward=websocket.send)
    except (NotSignedIn, ConnectionError, OSError) as exc:
        log.info("live feed not opened: %s", type(exc).__name__)
        await _send_error(websocket, t, "unavailable", 1013)
        return
    await upstream.send(json.dumps({"type": "auth", "token": token}))
    try:
        await until_first_done(
            _browser_to_upstream(websocket, upstream),
            _upstream_to_browser(websocket, upstream),
            _keep_authenticated(page, upstream),
        )
    finally:
        await upstream.close()
        with contextlib.suppress(Exception):
            await websocket.close(**_close_of(upstream))


# Capacity's own close codes reach the browser as they are (4401: the token expired or was
# revoked, 4403, 4000 reconnect, 1013 try later…); anything else closes normally.
PROPAGATED_CLOSE = frozenset({1001, 1003, 1009, 1011, 1013}) | frozenset(range(4000, 5000))


def _close_of(upstream: Upstream) -> dict[str, Any]:
    """How to close the browser's socket after capacity closed (or did not close) ours."""
    code = upstream.close_code
    if code is None or code not in PROPAGATED_CLOSE:
        return {"code": 1000}
    return {"code": code, "reason": upstream.close_reason[:120]}


async def _send_error(websocket: WebSocket, t: Translator, code: str, close: int) -> None:
    detail = t.gettext("The live feed is not available right now; the page will retry.")
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "error": code, "detail": detail}))
        await websocket.close(code=close)


async def _browser_to_upstream(websocket: WebSocket, upstream: Upstream) -> None:
    """Only ``subscribe`` and heartbeats pass; the browser never speaks for the token."""
    try:
        while True:
            text = await websocket.receive_text()
            if len(text) > MAX_MESSAGE:
                continue
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") in BROWSER_TYPES:
                await upstream.send(json.dumps(message))
    except WebSocketDisconnect:
        return


async def _upstream_to_browser(websocket: WebSocket, upstream: Upstream) -> None:
    while True:
        text = await upstream.recv()
        if text is None:
            return
        await websocket.send_text(text)


async def _keep_authenticated(page: Page, upstream: Upstream) -> None:
    """Send a fresh token upstream before the current one expires."""
    while True:
        await asyncio.sleep(REAUTH_CHECK_SECONDS)
        tokens = page.browser.tokens() or {}
        if float(tokens.get("expires_at", 0)) - time.time() < 2 * REAUTH_CHECK_SECONDS + 60:
            try:
                token = await page.access_token()
            except NotSignedIn:
                return
            await upstream.send(json.dumps({"type": "auth", "token": token}))
