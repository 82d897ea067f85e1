"""The audit service: the trail's routes and the consumer of every event on the bus."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from audit.anchors import anchor_path
from audit.database import db, outbox
from audit.report_router import router as report_router
from audit.roster_router import router as roster_router
from audit.router import router
from audit.service import checkpoint_head, record_event, record_events, signing_key
from services.app import Runtime, ServiceSpec
from services.events import Event

log = logging.getLogger("canaliza.audit")


# Events waiting together are recorded in one write transaction, up to this many.
BATCH = 200


def consume(event: Event) -> None:
    """Record one event in its own write transaction (duplicates are ignored)."""
    with db.unit_of_work() as session:
        record_event(session, event)


def consume_batch(events: list[Event]) -> None:
    """Record the events waiting together in one write transaction (duplicates are
    ignored). If the batch fails, each event is tried in its own transaction, so one bad
    event costs only itself, as when they came one by one."""
    try:
        with db.unit_of_work() as session:
            record_events(session, events)
        return
    except Exception:
        if len(events) == 1:
            raise
        log.exception("could not record a batch of %d events; recording one by one", len(events))
    for event in events:
        try:
            consume(event)
        except Exception:
            log.exception("could not record event %s (%s)", event.id, event.type)


async def _handler(events: list[Event]) -> None:
    await run_in_threadpool(consume_batch, events)


def checkpoint() -> None:
    """Sign and anchor the chain's head if entries came since the last checkpoint."""
    with db.unit_of_work() as session:
        checkpoint_head(session)


async def _checkpoint_now() -> None:
    try:
        await run_in_threadpool(checkpoint)
    except Exception:
        log.exception("could not checkpoint the audit trail")


async def _checkpoint_every(seconds: float) -> None:
    # A quiet trail's last entries are anchored too, not only every CHECKPOINT_EVERY entries.
    while True:
        await asyncio.sleep(seconds)
        await _checkpoint_now()


async def _start(runtime: Runtime) -> None:
    # The checkpoint key opens with this process's key-encryption key (else no start, rather
    # than an error at the first checkpoint); a plain one from an older version is encrypted.
    await run_in_threadpool(signing_key)
    log.info("audit checkpoints are anchored in %s", anchor_path(db.url))
    seconds = runtime.settings.audit_checkpoint_seconds
    if seconds > 0:
        runtime.spawn(_checkpoint_every(seconds), "audit-checkpoints")
    if runtime.bus is None:
        log.warning("no bus: the audit trail will not receive events")
        return
    sub = await runtime.bus.subscribe_batches("canaliza.>", _handler, max_batch=BATCH)
    runtime.state["audit_subscription"] = sub


async def _stop(runtime: Runtime) -> None:
    sub = runtime.state.pop("audit_subscription", None)
    if sub is not None:
        await sub.close()
    await _checkpoint_now()  # the tail is anchored while the service is down


def service() -> ServiceSpec:
    """The audit service's contribution to an app."""
    return ServiceSpec(
        name="audit",
        routers=[router, report_router, roster_router],
        database=db,
        outbox=outbox,
        on_startup=[_start],
        on_shutdown=[_stop],
        description="Bitácora encadenada y verificable para la supervisión de SEGOB.",
    )
