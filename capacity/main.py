"""The capacity service: its routes, database, outbox and the hold-expiry task."""

from __future__ import annotations

import asyncio
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


async def _start(runtime: Runtime) -> None:
    # A new app may point at another database: never reuse a read model built elsewhere.
    read_model.reset()
    runtime.spawn(_expiry_loop(EXPIRY_INTERVAL_SECONDS), name="capacity-hold-expiry")
    if runtime.bus is not None:
        sub = await runtime.bus.subscribe(REFERRAL_CREATED, _on_referral_created)
        runtime.state["capacity_referral_subscription"] = sub


async def _stop(runtime: Runtime) -> None:
    sub = runtime.state.pop("capacity_referral_subscription", None)
    if sub is not None:
        await sub.close()


def live_snapshot(filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Pools for a live-feed snapshot (run in the thread pool by the hub)."""
    with db.unit_of_work(write=False) as session:
        return pool_snapshot_rows(
            session, state=filters.get("state"), facility_id=filters.get("facility_id")
        )


def service() -> ServiceSpec:
    """The capacity service's contribution to an app."""
    set_snapshot_provider(live_snapshot)
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
