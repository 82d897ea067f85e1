"""The capacity service: its routes, database, outbox and the hold-expiry task."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool

from capacity.database import db, outbox
from capacity.router import router
from capacity.search import read_model
from capacity.service import expire_holds
from services.app import Runtime, ServiceSpec

log = logging.getLogger("canaliza.capacity")

EXPIRY_INTERVAL_SECONDS = 15.0


def expire_due_holds() -> list[str]:
    """One pass of the expiry sweep, in its own write transaction."""
    with contextlib.contextmanager(db.session_scope)(write=True) as session:
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


async def _start(runtime: Runtime) -> None:
    # A new app may point at another database: never reuse a read model built elsewhere.
    read_model.reset()
    runtime.spawn(_expiry_loop(EXPIRY_INTERVAL_SECONDS), name="capacity-hold-expiry")


def service() -> ServiceSpec:
    """The capacity service's contribution to an app."""
    return ServiceSpec(
        name="capacity",
        routers=[router],
        database=db,
        outbox=outbox,
        on_startup=[_start],
        description="Padrón de instalaciones, camas por elegibilidad, reservas y búsqueda.",
    )
