"""The capacity service: its routes, database, outbox and the hold-expiry task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from capacity.database import db, outbox
from capacity.holds import expire_holds
from capacity.live import live_router, set_snapshot_provider, start_live, stop_live
from capacity.lookups import pool_snapshot_rows
from capacity.operations import mark_referred
from capacity.router import router
from capacity.search import read_model
from services.app import Runtime, ServiceSpec
from services.events import Event

log = logging.getLogger("canaliza.capacity")

EXPIRY_INTERVAL_SECONDS = 15.0
# The search index re-reads the capacity revision at least this often off the request path
# (a write by a process whose events this one has not seen yet, e.g. a bulk load).
SEARCH_INDEX_CHECK_SECONDS = 2.0
CAPACITY_EVENTS = "canaliza.capacity.>"


def expire_due_holds() -> list[str]:
    """One pass of the expiry sweep, in its own write transaction."""
    with db.unit_of_work() as session:
        return expire_holds(session)


async def _expiry_loop(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await run_in_threadpool(expire_due_holds)
            if expired:
                log.info("released %d expired hold(s)", len(expired))
        except asyncio.CancelledError:
            raise
        except Exception:  # database briefly away: try again next round
            log.exception("hold expiry sweep failed")


REFERRAL_CREATED = "canaliza.referral.referral.created"


def referral_created(event: Event) -> None:
    """A referral names a hold: the hold is the referral's now, so releasing its rescue
    operation leaves it (idempotent; a hold of no operation is marked all the same)."""
    hold_id, referral_id = event.payload.get("hold_id"), event.payload.get("referral_id")
    if not hold_id or not referral_id:
        return
    with db.unit_of_work() as session:
        mark_referred(session, hold_id=str(hold_id), referral_id=str(referral_id))


async def _on_referral_created(event: Event) -> None:
    try:
        await run_in_threadpool(referral_created, event)
    except Exception:  # the database briefly away: the hold stays unmarked
        log.exception("could not mark the hold of referral event %s", event.id)


class SearchIndexRefresher:
    """Keeps the search read model current off the request path.

    Each capacity commit in this process (after-commit hook) and each capacity event on the
    bus (commits of other replicas) marks the model changed and wakes this task, which
    reloads what changed in a worker thread; a periodic check catches writes nobody
    announced. A search only reads the database itself when it arrives between a commit and
    this task's catch-up (read-your-writes holds either way).
    """

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval or SEARCH_INDEX_CHECK_SECONDS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    def changed(self) -> None:
        """A change was committed (any thread): mark the model and wake the task."""
        read_model.mark_changed()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def on_event(self, event: Event) -> None:
        self.changed()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow the cancel that
            # stops this task when it races with the wake-up (bpo-42130).
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.interval)
            finally:
                waiter.cancel()
            if not self._wake.is_set():
                read_model.mark_changed()  # the periodic check: one query if nothing moved
            self._wake.clear()
            try:
                await read_model.catch_up_off_loop(db.engine.connect)
            except asyncio.CancelledError:
                raise
            except Exception:  # database briefly away: searches catch up themselves
                log.warning("search index refresh failed", exc_info=True)


REFRESHER_KEY = "capacity_search_refresher"


async def _start(runtime: Runtime) -> None:
    # A new app may point at another database: never reuse a read model built elsewhere.
    read_model.reset()
    refresher = SearchIndexRefresher()
    runtime.state[REFRESHER_KEY] = refresher
    db.after_commit_hooks.append(refresher.changed)
    if runtime.bus is not None:
        runtime.state["capacity_search_feed"] = await runtime.bus.subscribe(
            CAPACITY_EVENTS, refresher.on_event
        )
    runtime.spawn(refresher.run(), name="capacity-search-index")
    runtime.spawn(_expiry_loop(EXPIRY_INTERVAL_SECONDS), name="capacity-hold-expiry")
    if runtime.bus is not None:
        sub = await runtime.bus.subscribe(REFERRAL_CREATED, _on_referral_created)
        runtime.state["capacity_referral_subscription"] = sub


async def _stop(runtime: Runtime) -> None:
    sub = runtime.state.pop("capacity_referral_subscription", None)
    if sub is not None:
        await sub.close()
    refresher = runtime.state.pop(REFRESHER_KEY, None)
    if refresher is not None:
        with contextlib.suppress(ValueError):
            db.after_commit_hooks.remove(refresher.changed)
    feed = runtime.state.pop("capacity_search_feed", None)
    if feed is not None:
        await feed.close()


def live_snapshot(filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Pools for a live-feed snapshot (run in the thread pool by the hub)."""
    with db.unit_of_work(write=False) as session:
        return pool_snapshot_rows(
            session, state=filters.get("state"), facility_id=filters.get("facility_id")
        )


def service() -> ServiceSpec:
    """The capacity service's contribution to an app."""
    set_snapshot_provider(live_snapshot)
    # Even without a running app (a script, a test calling the flows), a commit through
    # capacity's sessions marks the search model changed.
    if read_model.mark_changed not in db.after_commit_hooks:
        db.after_commit_hooks.append(read_model.mark_changed)
    return ServiceSpec(
        name="capacity",
        routers=[router],
        # The WebSocket authenticates with its first message, never with the URL.
        public_routers=[live_router],
        database=db,
        outbox=outbox,
        on_startup=[_start, start_live],
        on_shutdown=[stop_live, _stop],
        description="Padrón de instalaciones, camas por elegibilidad, reservas y búsqueda.",
    )
