"""The referral service: institutions, agreements, referrals and their lifecycle."""

from __future__ import annotations

import asyncio
import logging

from referral.care_router import router as care_router
from referral.database import db, outbox
from referral.flows import run_expiry
from referral.router import router
from services.app import Runtime, ServiceSpec

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


def service() -> ServiceSpec:
    """The referral service's contribution to an app."""
    return ServiceSpec(
        name="referral",
        routers=[router, care_router],
        database=db,
        outbox=outbox,
        on_startup=[_start_expiry],
        description="Instituciones, convenios y canalizaciones.",
    )
