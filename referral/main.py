"""The referral service: institutions, agreements, referrals and their lifecycle."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from starlette.concurrency import run_in_threadpool

from referral import service as referral_service
from referral.database import db, outbox
from referral.dependencies import capacity_client, unit_of_work
from referral.router import router
from services.app import Runtime, ServiceSpec
from services.errors import CanalizaError

log = logging.getLogger("canaliza.referral")

EXPIRY_INTERVAL_SECONDS = 60.0


async def run_expiry(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """Expire overdue referrals, then release their holds (after the commit)."""

    def expire() -> list[tuple[str, str]]:
        with unit_of_work() as session:
            referral_service.expire_overdue(session, now)
        with unit_of_work(write=False) as session:
            return referral_service.pending_releases(session)

    pending = await run_in_threadpool(expire)
    released = []
    for referral_id, hold_id in pending:
        try:
            await capacity_client(runtime).release_hold(hold_id)
        except CanalizaError as exc:
            log.warning("hold %s not released yet: %s", hold_id, exc.detail)
            continue

        def done(rid: str = referral_id) -> None:
            with unit_of_work() as session:
                referral_service.mark_released(session, referral_id=rid)

        await run_in_threadpool(done)
        released.append(hold_id)
    return released


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
        routers=[router],
        database=db,
        outbox=outbox,
        on_startup=[_start_expiry],
        description="Instituciones, convenios y canalizaciones.",
    )
