"""The outbox relay: publishes committed events to the bus, in order, at least once.

Woken right after each commit (low latency) and also polling (events committed by
another process, or left over by a crash between commit and publish). The bus drops
duplicates by event id, and consumers are idempotent, so re-publishing is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from starlette.concurrency import run_in_threadpool

from services.bus import Bus
from services.db import ServiceDatabase
from services.events import Event, Outbox

log = logging.getLogger("canaliza.relay")

BATCH = 200  # events read per pass
MARK_AT_MOST = 1000  # published rows left unmarked at most (then marked at once)

# Fault injection for the resilience suite, off unless set: the process SIGKILLs itself
# when it is about to publish an event of this type (committed, not yet published).
KILL_BEFORE_PUBLISH_ENV = "CANALIZA_FAULT_KILL_BEFORE_PUBLISH"


class OutboxRelay:
    """Moves one service's outbox rows onto the bus."""

    def __init__(
        self,
        db: ServiceDatabase,
        outbox: Outbox,
        bus: Bus,
        *,
        poll_interval: float = 0.5,
        mark_interval: float = 0.25,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.bus = bus
        self.poll_interval = poll_interval
        # Published rows are marked in one write at most this often (and whenever the relay
        # is idle or stops), not once per pass: each mark is a write transaction competing
        # with the service's own writers (SQLite takes them one at a time).
        self.mark_interval = mark_interval
        self._unmarked: list[int] = []  # published, to be marked
        self._last_mark = 0.0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self._kill_before_publish = os.environ.get(KILL_BEFORE_PUBLISH_ENV) or None

    def wake(self) -> None:
        """Ask for a publish pass now; safe to call from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.db.after_commit_hooks.append(self.wake)
        self._task = asyncio.create_task(self._run(), name=f"relay-{self.db.service}")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.db.after_commit_hooks.remove(self.wake)
        if self._task is not None:
            # Python 3.11's wait_for can swallow a cancel that races with the wake-up
            # event (bpo-42130), so cancel until the task is really done.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # best effort: unmarked rows are sent again
            await self.mark()

    async def drain(self) -> int:
        """Publish everything pending now; returns how many events went out.

        A row this relay published and has not marked yet is skipped, not sent twice; a
        new process starts from the first unmarked row (at least once: the bus drops
        repeated ids). Skipped by sequence, not read after the newest one: on PostgreSQL a
        transaction that took a lower sequence may commit after a higher one."""
        total = 0
        while True:
            batch, more = await run_in_threadpool(self._read_batch, set(self._unmarked))
            try:
                for seq, event in batch:
                    if event.type == self._kill_before_publish:
                        os.kill(os.getpid(), signal.SIGKILL)
                    await self.bus.publish(event)
                    self._unmarked.append(seq)
                    total += 1
                    self.published += 1
            finally:
                if len(self._unmarked) >= MARK_AT_MOST:
                    await self.mark()
            if not more:  # the outbox held no more (no empty read to learn it)
                return total

    async def mark(self) -> None:
        """Mark what was published since the last mark (one write transaction)."""
        seqs, self._unmarked = self._unmarked, []
        self._last_mark = time.monotonic()
        try:
            await run_in_threadpool(self._mark, seqs)
        except BaseException:
            self._unmarked = seqs + self._unmarked
            raise

    def _read_batch(self, skip: set[int]) -> tuple[list[tuple[int, Event]], bool]:
        with self.db.engine.connect() as conn:
            return self.outbox.pending_after_skipping(conn, skip, limit=BATCH)

    def _mark(self, seqs: list[int]) -> None:
        if seqs:
            with self.db.engine.begin() as conn:
                self.outbox.mark_published(conn, seqs)

    async def _run(self) -> None:
        backoff = self.poll_interval
        while True:
            idle = False
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except TimeoutError:
                idle = True
            self._wake.clear()
            try:
                await self.drain()
                due = time.monotonic() - self._last_mark >= self.mark_interval
                if self._unmarked and (idle or due):
                    await self.mark()
                backoff = self.poll_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # bus or database down: keep the events, retry later
                backoff = min(max(backoff * 2, 0.5), 10.0)
                log.warning(
                    "outbox relay of %s paused (%s); retrying in %.1fs",
                    self.db.service,
                    exc,
                    backoff,
                )
