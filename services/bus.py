"""The event bus behind one interface: in-process (embedded) or NATS JetStream.

Publishing is idempotent by event id. A subscription receives events in stream order;
``deliver_from`` replays from a stream sequence (for resuming clients). Handlers run on
their own task per subscription, so a slow consumer never blocks the publisher.

This module is the interface and the in-process bus; :mod:`services.bus_nats` is the
NATS bus, and :mod:`services.bus_factory` picks one from the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase

from services.events import Event

log = logging.getLogger("canaliza.bus")

Handler = Callable[[Event], Awaitable[None]]
# A consumer that takes the events already waiting together (in stream order, never empty).
BatchHandler = Callable[[list[Event]], Awaitable[None]]


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS-style matching: ``*`` one token, ``>`` the rest."""
    p_tokens, s_tokens = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p_tokens):
        if tok == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (tok != "*" and not fnmatchcase(s_tokens[i], tok)):
            return False
    return len(p_tokens) == len(s_tokens)


class Subscription:
    """A running subscription; :meth:`close` stops it."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close

    async def close(self) -> None:
        await self._close()


class Bus:
    """Interface of every bus."""

    name = "abstract"

    async def start(self) -> None:
        """Connect (no-op for the in-process bus)."""

    async def close(self) -> None:
        """Disconnect and stop every subscription."""

    async def publish(self, event: Event) -> int:  # pragma: no cover - interface
        """Publish ``event``; returns its stream sequence. Duplicate ids are dropped."""
        raise NotImplementedError

    async def subscribe(
        self, subject: str, handler: Handler, *, deliver_from: int | None = None
    ) -> Subscription:  # pragma: no cover - interface
        """Call ``handler`` for each event on ``subject`` (wildcards allowed)."""
        raise NotImplementedError

    async def subscribe_batches(
        self,
        subject: str,
        handler: BatchHandler,
        *,
        max_batch: int = 200,
        deliver_from: int | None = None,
    ) -> Subscription:
        """Like :meth:`subscribe`, but ``handler`` takes the events that are already waiting
        together, in order, up to ``max_batch`` (a consumer that writes them in one
        transaction keeps up under load). This default hands over one event at a time."""

        async def one(event: Event) -> None:
            await handler([event])

        return await self.subscribe(subject, one, deliver_from=deliver_from)

    async def last_sequence(self) -> int:  # pragma: no cover - interface
        """The sequence of the newest event in the stream (0 when empty)."""
        raise NotImplementedError

    async def first_sequence(self) -> int:  # pragma: no cover - interface
        """The oldest sequence still retained (replays older than this are impossible)."""
        raise NotImplementedError

    async def healthy(self) -> bool:
        return True


class InProcessBus(Bus):
    """A bus inside one process with a bounded, replayable history."""

    name = "inprocess"

    def __init__(self, *, retain: int = 50_000, dedupe_window: int = 100_000) -> None:
        self._history: deque[Event] = deque(maxlen=retain)
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._dedupe_window = dedupe_window
        self._seq = 0
        self._subs: list[tuple[str, asyncio.Queue[Event | None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def publish(self, event: Event) -> int:
        async with self._lock:
            if event.id in self._seen:
                return self._seen[event.id]
            self._seq += 1
            delivered = event.model_copy(update={"sequence": self._seq})
            self._history.append(delivered)
            self._seen[event.id] = self._seq
            while len(self._seen) > self._dedupe_window:
                self._seen.popitem(last=False)
            for pattern, queue in self._subs:
                if subject_matches(pattern, delivered.subject):
                    queue.put_nowait(delivered)
            return self._seq

    async def subscribe(
        self, subject: str, handler: Handler, *, deliver_from: int | None = None
    ) -> Subscription:
        async def each(events: list[Event]) -> None:
            for ev in events:
                try:
                    await handler(ev)
                except Exception:
                    log.exception("event handler failed for %s", ev.type)

        return await self._follow(subject, each, 1, deliver_from)

    async def subscribe_batches(
        self,
        subject: str,
        handler: BatchHandler,
        *,
        max_batch: int = 200,
        deliver_from: int | None = None,
    ) -> Subscription:
        async def batch(events: list[Event]) -> None:
            try:
                await handler(events)
            except Exception:
                log.exception("event handler failed for a batch of %d", len(events))

        return await self._follow(subject, batch, max(1, max_batch), deliver_from)

    async def _follow(
        self, subject: str, deliver: BatchHandler, max_batch: int, deliver_from: int | None
    ) -> Subscription:
        """One subscription's queue and the task that hands its events over, in order."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        async with self._lock:
            if deliver_from is not None:
                for ev in self._history:
                    if (
                        ev.sequence is not None
                        and ev.sequence >= deliver_from
                        and subject_matches(subject, ev.subject)
                    ):
                        queue.put_nowait(ev)
            entry = (subject, queue)
            self._subs.append(entry)

        async def pump() -> None:
            while True:
                ev = await queue.get()
                events: list[Event] = []
                while ev is not None:
                    events.append(ev)
                    if len(events) >= max_batch or queue.empty():
                        break
                    ev = queue.get_nowait()
                if events:
                    await deliver(events)
                if ev is None:
                    return

        task = asyncio.create_task(pump(), name=f"bus-sub-{subject}")
        self._tasks.add(task)

        async def close() -> None:
            with contextlib.suppress(ValueError):
                self._subs.remove(entry)
            queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._tasks.discard(task)

        return Subscription(close)

    async def last_sequence(self) -> int:
        return self._seq

    async def first_sequence(self) -> int:
        return self._history[0].sequence or 1 if self._history else self._seq + 1

    async def close(self) -> None:
        for _, queue in list(self._subs):
            queue.put_nowait(None)
        self._subs.clear()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
