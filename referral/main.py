"""The referral service: institutions, agreements, referrals and their lifecycle."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from referral.care_router import router as care_router
from referral.database import db, outbox
from referral.flows import NOTIFIER_KEY, run_expiry
from referral.outbound import REFERRAL_EVENTS, Notifier, channel_from, notices_for, recipients_from
from referral.router import router
from services.app import Runtime, ServiceSpec
from services.events import Event

log = logging.getLogger("canaliza.referral")

EXPIRY_INTERVAL_SECONDS = 60.0


async def _expiry_loop(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(EXPIRY_INTERVAL_SECONDS)
        try:
            await run_expiry(runtime)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("referral expiry round failed")


async def _start_expiry(runtime: Runtime) -> None:
    runtime.spawn(_expiry_loop(runtime), "referral-expiry")


async def _start_notices(runtime: Runtime) -> None:
    """Tell the institutions concerned of each referral step outside the platform."""
    notifier = Notifier(channel_from(runtime.settings), recipients_from(runtime.settings))
    runtime.state[NOTIFIER_KEY] = notifier
    if runtime.bus is None:
        return

    async def on_event(event: Event) -> None:
        if notifier.first_time(event.id):
            await run_in_threadpool(notifier.deliver, notices_for(event.type, event.payload))

    runtime.state["referral_notice_feed"] = await runtime.bus.subscribe(REFERRAL_EVENTS, on_event)


def service() -> ServiceSpec:
    """The referral service's contribution to an app."""
    return ServiceSpec(
        name="referral",
        routers=[router, care_router],
        database=db,
        outbox=outbox,
        on_startup=[_start_expiry, _start_notices],
        description="Instituciones, convenios y canalizaciones.",
    )
