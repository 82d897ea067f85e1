"""The production bus: NATS JetStream.

One stream (``CANALIZA`` by default) holds every subject under ``canaliza.>`` on file
storage. Publishing sends ``Nats-Msg-Id: <event id>`` so the server drops duplicates within
its duplicate window and answers with the original sequence: the outbox relay can
re-publish after a crash without doubling anything.

A subscription is our own ordered consumer: an ephemeral push consumer without acks that
starts at an explicit stream sequence. We remember the last stream sequence handed to the
handler; whenever the consumer looks broken (a missed delivery sequence, silence longer
than a few idle heartbeats, a reconnect, a broker restart that forgot the consumer) we
drop it and create a new one from ``last + 1``. Deliveries at or below ``last`` are
skipped, so the handler sees each event once, in stream order, with no gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError

from services.bus import Bus, Handler, Subscription
from services.events import Event

log = logging.getLogger("canaliza.bus.nats")


class BusUnavailable(RuntimeError):
    """The broker cannot be reached right now (the relay keeps the events and retries)."""


class NatsBus(Bus):
    """A :class:`Bus` on NATS JetStream."""

    name = "nats"

    def __init__(
        self,
        *,
        url: str = "nats://127.0.0.1:4222",
        stream: str = "CANALIZA",
        subject_prefix: str = "canaliza",
        max_age_seconds: float = 30 * 24 * 3600,
        max_msgs: int = 5_000_000,
        duplicate_window_seconds: float = 600,
        publish_timeout: float = 3.0,
        idle_heartbeat: float = 1.0,
        connect_timeout: float = 2.0,
        reconnect_wait: float = 0.5,
        start_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.max_age_seconds = max_age_seconds
        self.max_msgs = max_msgs
        self.duplicate_window_seconds = duplicate_window_seconds
        self.publish_timeout = publish_timeout
        self.idle_heartbeat = idle_heartbeat
        self.connect_timeout = connect_timeout
        self.reconnect_wait = reconnect_wait
        # Once connected we reconnect forever; the first connection must succeed in time,
        # so that a service started without a broker fails visibly instead of hanging.
        self.start_timeout = start_timeout
        self._nc: NATS | None = None
        self._followers: set[_Follower] = set()
        # Bumped on every reconnect: followers re-create their consumer to be sure.
        self.connection_epoch = 0

    # -- subjects ---------------------------------------------------------------------

    def subject_for(self, subject: str) -> str:
        """Map a ``canaliza.…`` subject onto this bus's prefix (tests use their own)."""
        head, sep, rest = subject.partition(".")
        if head == "canaliza" and self.subject_prefix != "canaliza":
            return f"{self.subject_prefix}{sep}{rest}"
        return subject

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (reconnecting forever afterwards) and make sure the stream exists."""

        async def on_error(exc: Exception) -> None:
            log.warning("NATS: %s", exc)

        async def on_disconnect() -> None:
            log.warning("NATS disconnected from %s", self.url)

        async def on_reconnect() -> None:
            self.connection_epoch += 1
            log.info("NATS reconnected to %s", self.url)

        nc = NATS()
        try:
            await asyncio.wait_for(
                self._connect(nc, on_error, on_disconnect, on_reconnect), self.start_timeout
            )
        except TimeoutError as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise BusUnavailable(
                f"NATS no responde en {self.url} tras {self.start_timeout:.0f} s"
            ) from exc
        self._nc = nc
        await self._ensure_stream()

    async def _connect(
        self, nc: NATS, on_error: Any, on_disconnect: Any, on_reconnect: Any
    ) -> None:
        await nc.connect(
            servers=[self.url],
            max_reconnect_attempts=-1,
            reconnect_time_wait=self.reconnect_wait,  # type: ignore[arg-type]  # floats work
            connect_timeout=self.connect_timeout,  # type: ignore[arg-type]
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            name=f"canaliza-{self.stream}",
        )

    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            max_age=self.max_age_seconds,
            max_msgs=self.max_msgs,
            duplicate_window=self.duplicate_window_seconds,
            num_replicas=1,
        )
        js = self._jetstream()
        try:
            await js.add_stream(config=config)
        except BadRequestError:
            # It exists with another configuration: bring the limits up to date.
            await js.update_stream(config=config)

    async def close(self) -> None:
        for follower in list(self._followers):
            await follower.stop()
        self._followers.clear()
        if self._nc is not None:
            if self._nc.is_connected:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._nc.drain(), 5)
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    async def healthy(self) -> bool:
        if not self._connected():
            return False
        try:
            await self._jetstream().stream_info(self.stream)
        except Exception:
            return False
        return True

    # -- publishing -------------------------------------------------------------------

    def _connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def _jetstream(self) -> Any:
        if self._nc is None:
            raise BusUnavailable("el bus NATS no está iniciado")
        return self._nc.jetstream(timeout=self.publish_timeout)

    async def publish(self, event: Event) -> int:
        """Publish ``event``; the stream sequence (the original one for a duplicate id)."""
        if not self._connected():
            # Fail fast instead of letting the client buffer it: the outbox keeps it.
            raise BusUnavailable(f"NATS no está conectado ({self.url})")
        ack = await self._jetstream().publish(
            self.subject_for(event.subject),
            event.to_json().encode(),
            timeout=self.publish_timeout,
            headers={"Nats-Msg-Id": event.id},
        )
        return int(ack.seq)

    # -- stream positions -------------------------------------------------------------

    async def _state(self) -> Any:
        if not self._connected():
            raise BusUnavailable(f"NATS no está conectado ({self.url})")
        info = await self._jetstream().stream_info(self.stream)
        return info.state

    async def last_sequence(self) -> int:
        state = await self._state()
        return int(state.last_seq or 0)

    async def first_sequence(self) -> int:
        state = await self._state()
        if not state.messages:
            return int(state.last_seq or 0) + 1
        return int(state.first_seq or 1)

    # -- subscribing ------------------------------------------------------------------

    async def subscribe(
        self, subject: str, handler: Handler, *, deliver_from: int | None = None
    ) -> Subscription:
        """Deliver events on ``subject`` to ``handler`` in stream order, once each.

        Without ``deliver_from`` the subscription starts after the newest event now in
        the stream (later ones are never lost, even across a reconnect).
        """
        if deliver_from is None:
            start = await self.last_sequence() + 1
        else:
            start = max(int(deliver_from), 1)
        follower = _Follower(self, self.subject_for(subject), handler, start)
        self._followers.add(follower)
        follower.start()

        async def close() -> None:
            await follower.stop()
            self._followers.discard(follower)

        return Subscription(close)


class _Follower:
    """One subscription: keeps an ephemeral consumer alive and delivers in order."""

    def __init__(self, bus: NatsBus, subject: str, handler: Handler, start: int) -> None:
        self.bus = bus
        self.subject = subject
        self.handler = handler
        self.last = start - 1  # the last stream sequence handed to the handler
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"nats-follow-{self.subject}")

    async def stop(self) -> None:
        if self._task is not None:
            # Python 3.11's wait_for (used inside nats-py) can swallow a cancel that races
            # with the awaited result (bpo-42130); the follower would then run on and this
            # await never return. Cancel until the task is really done.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._follow_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("NATS consumer on %s failed (%s); re-creating", self.subject, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            self.restarts += 1

    async def _follow_once(self) -> None:
        """Run one consumer until it looks broken; returns so that a new one is made."""
        bus = self.bus
        while not bus._connected():  # noqa: ASYNC110 - the client exposes no event for it
            await asyncio.sleep(0.1)
        nc = bus._nc
        assert nc is not None
        epoch = bus.connection_epoch
        hb = bus.idle_heartbeat
        inbox = nc.new_inbox()
        sub: NatsSubscription = await nc.subscribe(inbox)
        consumer: str | None = None
        js = bus._jetstream()
        try:
            config = api.ConsumerConfig(
                deliver_subject=inbox,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.last + 1,
                ack_policy=api.AckPolicy.NONE,
                filter_subject=self.subject,
                idle_heartbeat=hb,
                inactive_threshold=max(30.0, hb * 10),
                mem_storage=True,
                num_replicas=1,
            )
            info = await js.add_consumer(bus.stream, config=config)
            consumer = info.name
            expected = 1  # the consumer's own delivery sequence
            while True:
                if bus.connection_epoch != epoch:
                    return  # reconnected: what was pushed meanwhile may be lost
                try:
                    msg = await sub.next_msg(timeout=hb * 3)
                except TimeoutError:
                    return  # no heartbeat: the consumer is gone (broker restart?)
                headers = msg.headers or {}
                if headers.get(api.Header.STATUS):
                    # Idle heartbeat: it names the last delivery sequence sent to us.
                    last_sent = headers.get(api.Header.LAST_CONSUMER)
                    if last_sent is not None and int(last_sent) != expected - 1:
                        return
                    continue
                meta = msg.metadata
                if meta.sequence.consumer != expected:
                    return  # a delivery went missing
                expected += 1
                sequence = meta.sequence.stream
                if sequence <= self.last:
                    continue
                try:
                    event = Event.model_validate_json(msg.data)
                except ValueError:
                    log.error("undecodable message at %s on %s", sequence, self.subject)
                    self.last = sequence
                    continue
                event.sequence = sequence
                self.last = sequence
                try:
                    await self.handler(event)
                except Exception:
                    log.exception("event handler failed for %s", event.type)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            if consumer is not None and nc.is_connected:
                with contextlib.suppress(NotFoundError, Exception):
                    await js.delete_consumer(bus.stream, consumer)
