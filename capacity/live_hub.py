"""The live capacity hub: one bus subscription per process, fanned out to WebSockets.

Connections with the same filter form a filter class (``capacity.live_fanout``): an
event is matched once per class and the same pre-serialised text is written to each
member. The hub never waits for a client: a write that cannot go out at once queues
behind it, bounded, and a client whose queue overflows is closed (1013) instead of
slowing the others. No pool change is sent twice at the same ``version``, so the overlap
between a snapshot (or a replay) and the live stream never shows the same change twice.

The protocol (close codes, filters, encoding) is in ``capacity.live_protocol`` and
documented in ``docs/live-feed.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from capacity.live_fanout import FilterClass, facility_text, removed_text, start_now
from capacity.live_protocol import (
    CAPACITY_SUBJECT,
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_RECONNECT,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED,
    FACILITY_EVENT_PREFIX,
    POOL_EVENT,
    REFERRAL_EVENT_PREFIX,
    REFERRAL_SUBJECT,
    REFERRALS_FILTER,
    REFUSED_ROLES,
    Close,
    FilterError,
    Gone,
    LiveOptions,
    Malformed,
    SnapshotProvider,
    compile_filters,
    dumps,
    filter_class_key,
    referral_audience,
    referral_notice,
)
from services.bus import Bus, Subscription
from services.clock import utcnow
from services.errors import Unauthorized
from services.events import Event
from services.security import authenticate_websocket_token
from services.tokens import Principal, RevocationList

log = logging.getLogger("canaliza.capacity.live")

# -- one connection -----------------------------------------------------------------


class LiveConnection:
    """One subscribed WebSocket: its filter, what it has seen, and how it is written to.

    Writes go out at once when the socket has room (no task per message); a write that
    has to wait for the client makes the connection queue what follows behind it, up to
    ``queue_size`` data messages, and a client that lets that queue overflow is closed
    (1013: reconnect and resume), so it never slows the others.
    """

    def __init__(self, hub: LiveHub, websocket: WebSocket, principal: Principal) -> None:
        self.hub = hub
        self.websocket = websocket
        self.principal = principal
        self.expires_at = float(principal.claims.get("exp") or 0)
        self.matches: Callable[[dict[str, Any]], bool] | None = None
        self.referrals = False  # subscribed to referral notices (the ``referrals`` filter)
        # While catching up: pool id → last version sent, and the facilities of those pools.
        # Once live, its filter class keeps them (``own``: the pools it sees differently).
        self.versions: dict[str, int] = {}
        self.facilities: set[str] = set()
        self.own: dict[str, int | None] = {}
        self.filter_class: FilterClass | None = None
        self.live = False
        self.held: list[Event] = []
        self.closing = False
        self.close_code: int | None = None
        self.sent = 0
        self.forced = False
        self.reader: asyncio.Task[Any] | None = None
        self._backlog: deque[tuple[str, bool] | Close] = deque()
        self._data_pending = 0
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def deliver(self, event: Event) -> None:
        """While it subscribes, the hub hands every capacity and referral event here, in
        order; they are held until the connection has caught up."""
        if self.matches is None or self.closing:
            return
        self.held.append(event)
        if len(self.held) > self.hub.options.queue_size:
            self.overflow()

    def _consider(self, event: Event) -> None:
        """The per-connection rule (catching up; live, the filter class applies it once)."""
        assert self.matches is not None
        if event.type.startswith(REFERRAL_EVENT_PREFIX):
            if self.referrals:
                text = self.hub.notice_text(event, self.principal.institution_id)
                if text is not None:
                    self.send_data(text)
        elif event.type == POOL_EVENT:
            pool = event.payload
            pool_id = str(pool.get("pool_id") or event.aggregate_id)
            version = int(pool.get("version") or event.aggregate_version)
            if self.versions.get(pool_id, -1) >= version:
                return  # already sent (duplicate delivery, or already in the snapshot)
            if self.matches(pool):
                self.versions[pool_id] = version
                if pool.get("facility_id"):
                    self.facilities.add(str(pool["facility_id"]))
                self.send_data(self.hub.render(event))
            elif pool_id in self.versions:
                # It no longer matches (its eligibility changed): tell the client to drop it.
                del self.versions[pool_id]
                self.send_data(removed_text(event, pool_id, version))
        elif event.type.startswith(FACILITY_EVENT_PREFIX):
            facility_id = str(event.payload.get("facility_id") or event.aggregate_id)
            if facility_id in self.facilities:
                self.send_data(facility_text(event, facility_id))

    def send_data(self, text: str) -> None:
        """Send a data message; a client that lets its queue overflow is dropped."""
        if not self.closing:
            self._write((text, True))

    def send_control(self, message: dict[str, Any]) -> None:
        """Send a protocol message (pings, errors); not counted against the bound."""
        if not self.closing:
            self._write((dumps(message), False))

    def _write(self, item: tuple[str, bool] | Close) -> None:
        if self._flusher is not None:  # a write is waiting for the client: queue behind it
            if isinstance(item, tuple) and item[1]:
                if self._data_pending >= self.hub.options.queue_size:
                    self.overflow()
                    return
                self._data_pending += 1
            self._backlog.append(item)
            return
        if isinstance(item, Close):
            self._flusher = asyncio.create_task(self._flush(None), name="live-writer")
            self._backlog.append(item)
            return
        try:
            rest = start_now(self.websocket.send_text(item[0]))
        except Exception:
            self.closing = True  # the client is gone
            return
        self.sent += 1
        if rest is not None:
            self._flusher = asyncio.create_task(self._flush(rest), name="live-writer")

    async def _flush(self, rest: Coroutine[Any, Any, None] | None) -> None:
        """Finish a write that had to wait, then send what queued behind it."""
        try:
            if rest is not None:
                await rest
            while self._backlog:
                item = self._backlog.popleft()
                if isinstance(item, Close):
                    await self.close_now(item.code, item.reason)
                    return
                text, is_data = item
                if is_data:
                    self._data_pending -= 1
                await self.websocket.send_text(text)
                self.sent += 1
        except Exception:
            self.closing = True
            return
        self._flusher = None

    def overflow(self) -> None:
        if self.closing:
            return
        log.warning("live client %s too slow; closing", self.principal.sub)
        self.closing = True
        self.hub.spawn(self.close_now(CLOSE_TRY_AGAIN_LATER, "cliente demasiado lento"))

    def finish(self, code: int, reason: str, *, error: str | None = None, detail: str = "") -> None:
        """Send what is queued (and an error, if any), then close with ``code``."""
        if self.closing:
            return
        if error is not None:
            self.send_control({"type": "error", "error": error, "detail": detail})
        self._write(Close(code, reason))
        self.closing = True

    def _pending_tasks(self) -> list[asyncio.Task[None]]:
        current = asyncio.current_task()
        tasks = [*self._tasks, *([self._flusher] if self._flusher is not None else [])]
        return [task for task in tasks if task is not current]

    async def close_now(self, code: int, reason: str) -> None:
        """Close at once, dropping whatever is queued."""
        if self.close_code is not None:
            return
        self.closing = True
        self.close_code = code
        current = asyncio.current_task()
        for task in self._pending_tasks():
            task.cancel()
        try:
            await asyncio.wait_for(
                self.websocket.close(code, reason), self.hub.options.close_timeout_seconds
            )
        except Exception:
            # The client reads nothing, not even our close frame: stop serving it.
            if self.reader is not None and self.reader is not current:
                self.forced = True
                self.reader.cancel()

    def holds(self, kind: str, value: str) -> bool:
        """Whether this connection is authenticated with the token ``jti`` (or from the
        refresh-token family ``sid``) the auth service just revoked."""
        return self.principal.claims.get(kind) == value

    async def revoke(self) -> None:
        """The token was revoked: drop what is queued, say why, and close (4401) at once."""
        if self.close_code is not None:
            return
        self.closing = True
        pending = self._pending_tasks()
        for task in pending:
            task.cancel()
        for task in pending:  # the writer is never mid-frame when the error goes out
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.websocket.send_text(
                    dumps(
                        {
                            "type": "error",
                            "error": "token_revoked",
                            "detail": "El token fue revocado; vuelva a iniciar sesión.",
                        }
                    )
                ),
                self.hub.options.close_timeout_seconds,
            )
        await self.close_now(CLOSE_UNAUTHORIZED, "token revocado")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.hub.options.heartbeat_seconds)
            self.send_control({"type": "ping"})

    async def _expiry(self) -> None:
        while True:
            left = self.expires_at - utcnow().timestamp()
            if left <= 0:
                self.finish(
                    CLOSE_UNAUTHORIZED,
                    "token expirado",
                    error="token_expired",
                    detail="El token expiró; vuelva a autenticarse.",
                )
                return
            await asyncio.sleep(min(left, 60.0))

    async def _lifetime(self) -> None:
        await asyncio.sleep(self.hub.options.max_lifetime_seconds)
        self.finish(CLOSE_RECONNECT, "reconnect")

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="live-heartbeat"),
            asyncio.create_task(self._expiry(), name="live-expiry"),
            asyncio.create_task(self._lifetime(), name="live-lifetime"),
        ]

    async def stop(self) -> None:
        pending = self._pending_tasks()
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task

    def refresh(self, principal: Principal) -> None:
        self.principal = principal
        self.expires_at = float(principal.claims.get("exp") or 0)

    # -- subscribing ----------------------------------------------------------------

    async def subscribe(
        self, matches: Callable[[dict[str, Any]], bool], filters: dict[str, Any], resume: int | None
    ) -> None:
        """Send a snapshot (or the missed changes), then join the connections of the same
        filter without a gap: whatever the hub sees meanwhile is held, then released."""
        hub = self.hub
        self.matches = matches
        self.referrals = filters.get(REFERRALS_FILTER) is True
        self.live = False
        self.held = []
        hub.joining.add(self)
        try:
            await self._catch_up(matches, filters, resume)
        finally:
            hub.joining.discard(self)
        if not self.closing:
            hub.join(self, filter_class_key(filters, self.principal.institution_id))

    async def _catch_up(
        self, matches: Callable[[dict[str, Any]], bool], filters: dict[str, Any], resume: int | None
    ) -> None:
        hub = self.hub
        last = await hub.position()
        replayed: list[Event] | None = None
        reset = False
        if resume is not None:
            first = await hub.bus.first_sequence()
            if first <= resume + 1 and resume <= last:
                replayed = await hub.replay(resume + 1, last)
            reset = replayed is None
        if replayed is not None:
            for event in replayed:  # the changes and referral steps a closed page missed
                self._consider(event)
            position = last
        else:
            # A connection for referral notices sees no pool: nothing to read.
            rows = [] if self.referrals else await run_in_threadpool(hub.snapshot_rows, filters)
            pools = [row for row in rows if matches(row)]
            self.versions = {str(p["pool_id"]): int(p.get("version") or 0) for p in pools}
            self.facilities = {str(p["facility_id"]) for p in pools if p.get("facility_id")}
            message: dict[str, Any] = {"type": "snapshot", "sequence": last, "pools": pools}
            if reset:
                message["reset"] = True
            self.send_data(dumps(message))
            position = last
        # Events that arrived while we were busy: those past the position go out now (the
        # per-pool version check drops what the snapshot already shows); a referral step is
        # never in a snapshot, so only those past the position.
        for event in self.held:
            past = (event.sequence or 0) > position
            if past or (replayed is None and not event.type.startswith(REFERRAL_EVENT_PREFIX)):
                self._consider(event)
        self.held = []
        self.live = True


# -- the hub ------------------------------------------------------------------------


def _retrieve(answer: asyncio.Future[int]) -> None:
    """Mark a shared answer's failure as seen (its waiters may all have gone)."""
    if not answer.cancelled():
        answer.exception()


def _notice(event: Event, step: str, side: str) -> str:
    return dumps(referral_notice(event.payload, step=step, side=side, sequence=event.sequence))


class LiveHub:
    """Feeds every live connection of this process from one bus subscription, by filter
    class: an event is matched once per class and the same text goes to each member."""

    def __init__(
        self,
        bus: Bus,
        snapshot: SnapshotProvider,
        options: LiveOptions | None = None,
        revocations: RevocationList | None = None,
    ) -> None:
        self.bus = bus
        self.snapshot_rows = snapshot
        self.options = options or LiveOptions()
        self.revocations = revocations
        self._stop_listening: Callable[[], None] | None = None
        self.connections: set[LiveConnection] = set()
        self.joining: set[LiveConnection] = set()  # subscribing: events are held for them
        self.classes: dict[str, FilterClass] = {}  # capacity filters
        self.notice_classes: dict[str, FilterClass] = {}  # referral notices, by institution
        self._subscription: Subscription | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._rendered: tuple[str, str] | None = None
        self._referral_subscription: Subscription | None = None
        self.events_seen = 0
        self.referral_events_seen = 0
        self.position_reads = 0
        self._next_position: asyncio.Future[int] | None = None
        self._reading_position = False

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe(CAPACITY_SUBJECT, self._on_event)
        self._referral_subscription = await self.bus.subscribe(
            REFERRAL_SUBJECT, self._on_referral_event
        )
        if self.revocations is not None:
            # The app's deny-list is fed by ``auth.token.revoked`` events; it tells the hub
            # right after recording one, so a socket opened with that token closes then,
            # not when the token would have expired.
            self._stop_listening = self.revocations.on_revoke(self.revoked)

    def revoked(self, kind: str, value: str) -> None:
        """Close every connection authenticated with the revoked token (or family)."""
        for conn in list(self.connections):
            if conn.holds(kind, value):
                log.info("live client %s: token revoked; closing", conn.principal.sub)
                conn.closing = True  # nothing more is queued for it from now on
                self.spawn(conn.revoke())

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
        if self._referral_subscription is not None:
            await self._referral_subscription.close()
            self._referral_subscription = None
        for conn in list(self.connections):
            await conn.close_now(CLOSE_GOING_AWAY, "servidor detenido")
        for task in list(self._background):
            task.cancel()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def position(self) -> int:
        """The bus's last sequence, for a connection that already holds events.

        One read at a time: callers arriving while a read is out share the next one, which
        starts after they asked (never older than their hold). A reconnect storm of
        thousands of sockets (a replica gone) costs a few reads, not one JetStream request
        per socket.
        """
        answer = self._next_position
        if answer is None:
            answer = self._next_position = asyncio.get_running_loop().create_future()
            answer.add_done_callback(_retrieve)
            if not self._reading_position:
                self._read_position()
        return await asyncio.shield(answer)

    def _read_position(self) -> None:
        answer, self._next_position = self._next_position, None
        assert answer is not None
        self._reading_position = True
        self.position_reads += 1

        def done(read: asyncio.Task[int]) -> None:
            self._reading_position = False
            if read.cancelled():
                answer.cancel()
            elif (exc := read.exception()) is not None:
                answer.set_exception(exc)
            else:
                answer.set_result(read.result())
            if self._next_position is not None:
                self._read_position()

        read = asyncio.ensure_future(self.bus.last_sequence())
        self._background.add(read)
        read.add_done_callback(self._background.discard)
        read.add_done_callback(done)

    def render(self, event: Event) -> str:
        """The JSON of one pool change, built once however many clients get it."""
        if self._rendered is not None and self._rendered[0] == event.id:
            return self._rendered[1]
        text = dumps({**event.payload, "type": "pool", "sequence": event.sequence})
        self._rendered = (event.id, text)
        return text

    def join(self, conn: LiveConnection, key: str) -> None:
        """A connection that has caught up joins the connections with the same filter."""
        assert conn.matches is not None
        classes = self.notice_classes if conn.referrals else self.classes
        filter_class = classes.get(key)
        if filter_class is None:
            filter_class = classes[key] = FilterClass(key, conn.matches)
        filter_class.join(conn)
        conn.filter_class = filter_class

    def leave(self, conn: LiveConnection) -> None:
        self.connections.discard(conn)
        self.joining.discard(conn)
        filter_class = conn.filter_class
        if filter_class is None:
            return
        conn.filter_class = None
        filter_class.leave(conn)
        if not filter_class.members:
            classes = self.notice_classes if conn.referrals else self.classes
            if classes.get(filter_class.key) is filter_class:
                del classes[filter_class.key]

    async def _on_event(self, event: Event) -> None:
        if event.type == POOL_EVENT:
            self.events_seen += 1
            for conn in list(self.joining):
                conn.deliver(event)

            def render() -> str:
                return self.render(event)

            for filter_class in list(self.classes.values()):
                filter_class.pool_changed(event, render)
        elif event.type.startswith(FACILITY_EVENT_PREFIX):
            self.events_seen += 1
            for conn in list(self.joining):
                conn.deliver(event)
            facility_id = str(event.payload.get("facility_id") or event.aggregate_id)
            text: str | None = None
            for filter_class in list(self.classes.values()):
                if facility_id in filter_class.facilities:
                    text = text or facility_text(event, facility_id)
                    filter_class.send_all(text)

    async def _on_referral_event(self, event: Event) -> None:
        """A referral step, to the live connections of the institutions concerned: one
        encoding per side, whatever the number of connections (a resuming connection gets
        the steps it missed from ``replay``, encoded by ``notice_text``)."""
        if not event.type.startswith(REFERRAL_EVENT_PREFIX):
            return
        self.referral_events_seen += 1
        for conn in list(self.joining):
            conn.deliver(event)  # subscribing: held, released in order once caught up
        step = event.type.removeprefix(REFERRAL_EVENT_PREFIX)
        for institution_id, side in referral_audience(event.payload, step).items():
            filter_class = self.notice_classes.get(
                filter_class_key({REFERRALS_FILTER: True}, institution_id)
            )
            if filter_class is not None:
                filter_class.send_all(_notice(event, step, side))

    @staticmethod
    def notice_text(event: Event, institution_id: str | None) -> str | None:
        """The notice of one referral step for an institution (None: not its concern)."""
        step = event.type.removeprefix(REFERRAL_EVENT_PREFIX)
        side = referral_audience(event.payload, step).get(institution_id or "")
        return None if side is None else _notice(event, step, side)

    async def replay(self, start: int, end: int) -> list[Event] | None:
        """Capacity and referral events with sequences ``start..end`` from the bus; None on
        any gap."""
        if start > end:
            return []
        got: list[Event] = []
        done = asyncio.Event()
        state = {"next": start, "gap": False}

        async def collect(event: Event) -> None:
            seq = event.sequence or 0
            if done.is_set() or seq > end:
                done.set()
                return
            if seq != state["next"]:
                state["gap"] = True  # retention dropped something: never hide a gap
                done.set()
                return
            state["next"] = seq + 1
            if event.type == POOL_EVENT or event.type.startswith(
                (FACILITY_EVENT_PREFIX, REFERRAL_EVENT_PREFIX)
            ):
                got.append(event)
            if seq >= end:
                done.set()

        # Every subject, so that each sequence number shows up and gaps are visible.
        sub = await self.bus.subscribe("canaliza.>", collect, deliver_from=start)
        try:
            await asyncio.wait_for(done.wait(), self.options.replay_timeout_seconds)
        except TimeoutError:
            return None
        finally:
            await sub.close()
        return None if state["gap"] else got

    # -- one WebSocket, from accept to close ----------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run the protocol on an accepted WebSocket until it closes."""
        with contextlib.suppress(WebSocketDisconnect, Gone):
            await self._serve(websocket)

    async def _receive(self, websocket: WebSocket) -> dict[str, Any]:
        try:
            message = await websocket.receive()
        except RuntimeError as exc:  # receive after a disconnect
            raise Gone() from exc
        if message["type"] == "websocket.disconnect":
            raise Gone()
        text = message.get("text")
        if text is None:
            raise Malformed(
                "unsupported_frame", "Solo se aceptan mensajes de texto JSON.", CLOSE_UNSUPPORTED
            )
        if len(text) > self.options.max_frame_bytes or (
            len(text.encode()) > self.options.max_frame_bytes
        ):
            raise Malformed(
                "frame_too_large",
                f"El mensaje excede {self.options.max_frame_bytes} bytes.",
                CLOSE_TOO_BIG,
            )
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise Malformed(
                "invalid_json", "El mensaje no es JSON válido.", CLOSE_UNSUPPORTED
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise Malformed(
                "invalid_message",
                'Cada mensaje es un objeto con "type".',
                CLOSE_UNSUPPORTED,
            )
        return data

    async def _reject(
        self, websocket: WebSocket, code: int, reason: str, error: str, detail: str
    ) -> None:
        with contextlib.suppress(Exception):
            await websocket.send_text(dumps({"type": "error", "error": error, "detail": detail}))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                websocket.close(code, reason), self.options.close_timeout_seconds
            )

    async def _authenticate(self, websocket: WebSocket, token: Any) -> Principal:
        if not isinstance(token, str) or not token:
            raise Unauthorized("Falta el token.", code="invalid_token")
        return await authenticate_websocket_token(websocket, token)

    async def _serve(self, websocket: WebSocket) -> None:
        try:
            first = await asyncio.wait_for(
                self._receive(websocket), self.options.auth_timeout_seconds
            )
        except TimeoutError:
            await self._reject(
                websocket,
                CLOSE_UNAUTHORIZED,
                "sin autenticación",
                "auth_timeout",
                "El primer mensaje debe ser {type: auth, token} y llegar a tiempo.",
            )
            return
        except Malformed as bad:
            await self._reject(websocket, bad.code, bad.error, bad.error, bad.detail)
            return
        if first.get("type") != "auth":
            await self._reject(
                websocket,
                CLOSE_UNAUTHORIZED,
                "sin autenticación",
                "auth_required",
                'El primer mensaje debe ser {"type": "auth", "token": "<JWT>"}.',
            )
            return
        try:
            principal = await self._authenticate(websocket, first.get("token"))
        except Unauthorized as exc:
            await self._reject(
                websocket, CLOSE_UNAUTHORIZED, "token rechazado", exc.code, exc.detail
            )
            return
        if not principal.roles - REFUSED_ROLES:
            await self._reject(
                websocket,
                CLOSE_FORBIDDEN,
                "rol no autorizado",
                "forbidden_role",
                "Su rol no permite ver la capacidad en vivo.",
            )
            return
        conn = LiveConnection(self, websocket, principal)
        conn.reader = asyncio.current_task()
        conn.send_control({"type": "ready", "sub": principal.sub, "expires_at": conn.expires_at})
        conn.start()
        self.connections.add(conn)
        try:
            await self._read_loop(conn)
        except asyncio.CancelledError:
            if not conn.forced:
                raise
        finally:
            self.leave(conn)
            await conn.stop()

    async def _read_loop(self, conn: LiveConnection) -> None:
        websocket = conn.websocket
        while not conn.closing:
            try:
                data = await self._receive(websocket)
            except Malformed as bad:
                conn.finish(bad.code, bad.error, error=bad.error, detail=bad.detail)
                break
            kind = data["type"]
            if kind == "auth":
                try:
                    principal = await self._authenticate(websocket, data.get("token"))
                except Unauthorized as exc:
                    conn.finish(
                        CLOSE_UNAUTHORIZED, "token rechazado", error=exc.code, detail=exc.detail
                    )
                    break
                if principal.sub != conn.principal.sub or not principal.roles - REFUSED_ROLES:
                    conn.finish(
                        CLOSE_UNAUTHORIZED,
                        "otro sujeto",
                        error="invalid_token",
                        detail="El nuevo token debe ser del mismo usuario y rol permitido.",
                    )
                    break
                conn.refresh(principal)
                conn.send_control(
                    {"type": "ready", "sub": principal.sub, "expires_at": conn.expires_at}
                )
            elif kind == "subscribe":
                await self._subscribe(conn, data)
            elif kind == "ping":
                conn.send_control({"type": "pong"})
            elif kind == "pong":
                pass
            else:
                conn.finish(
                    CLOSE_UNSUPPORTED,
                    "tipo desconocido",
                    error="unknown_type",
                    detail=f"Tipo de mensaje desconocido: {kind[:40]!r}.",
                )
                break
        # Wait for the close handshake (or the client going away) before forgetting it.
        with contextlib.suppress(Gone, Malformed, WebSocketDisconnect, Exception):
            while True:
                await self._receive(websocket)

    async def _subscribe(self, conn: LiveConnection, data: dict[str, Any]) -> None:
        if conn.matches is not None:
            conn.send_control(
                {
                    "type": "error",
                    "error": "already_subscribed",
                    "detail": "Esta conexión ya está suscrita; abra otra para otros filtros.",
                }
            )
            return
        filters = data.get("filters") or {}
        resume = data.get("resume_from")
        if resume is not None and (
            isinstance(resume, bool) or not isinstance(resume, int) or resume < 0
        ):
            conn.send_control(
                {
                    "type": "error",
                    "error": "invalid_resume",
                    "detail": "resume_from debe ser un entero ≥ 0 (la última secuencia vista).",
                }
            )
            return
        try:
            matches = compile_filters(filters)
        except FilterError as exc:
            conn.send_control({"type": "error", "error": "invalid_filters", "detail": str(exc)})
            return
        try:
            await conn.subscribe(matches, filters, resume)
        except Exception:
            log.exception("live subscribe failed")
            conn.matches = None
            conn.finish(
                CLOSE_INTERNAL,
                "no disponible",
                error="unavailable",
                detail="La capacidad en vivo no está disponible; reintente en unos segundos.",
            )
