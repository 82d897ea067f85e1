"""The referral service: institutions, agreements, referrals and their lifecycle."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from referral import flows
from referral import service as referral_service
from referral.database import db, outbox
from referral.dependencies import capacity_client, unit_of_work
from referral.router import router
from services.app import Runtime, ServiceSpec
from services.errors import CanalizaError

log = logging.getLogger("canaliza.referral")

EXPIRY_INTERVAL_SECONDS = 60.0


async def run_expiry(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """Expire overdue referrals, release the holds left pending (after the commit), and
    finish any lifecycle action interrupted between its two steps."""

    def expire() -> list[tuple[str, str, str]]:
        with unit_of_work() as session:
            referral_service.expire_overdue(session, now)
        with unit_of_work(write=False) as session:
            return referral_service.pending_releases(session)

    released = []
    for referral_id, hold_id, sender in await run_in_threadpool(expire):
        if await flows.release_referral_hold(
            runtime, referral_id=referral_id, hold_id=hold_id, sending_institution_id=sender
        ):
            released.append(hold_id)
    await flows.recover_interrupted_claims(runtime)
    await _offer_next_facilities(runtime)
    return released


async def _offer_next_facilities(runtime: Runtime) -> None:
    """Look up the next eligible facility for each new escalation (best effort)."""

    def awaiting() -> list[tuple[int, dict[str, Any]]]:
        with unit_of_work(write=False) as session:
            return [
                (e.id, dict(e.offer))
                for e in referral_service.escalations_awaiting_offer(session)
                if e.id is not None
            ]

    for escalation_id, offer in await run_in_threadpool(awaiting):
        search = offer.get("search") or {}
        try:
            answer = await capacity_client(runtime).search(
                people=search.get("people") or [], state=search.get("state")
            )
        except CanalizaError as exc:
            log.info("no facility search for escalation %s: %s", escalation_id, exc.detail)
            continue
        excluded = set(offer.get("exclude_facility_ids") or [])
        candidates = [
            {
                "facility_id": r.facility.id,
                "name": r.facility.name,
                "operator_institution_id": r.facility.operator_institution_id,
                "state": r.facility.state,
                "available": r.available,
            }
            for r in answer.results
            if r.facility.id not in excluded
        ][:3]

        def store(eid: int = escalation_id, found: list[dict[str, Any]] = candidates) -> None:
            with unit_of_work() as session:
                referral_service.record_offer(session, escalation_id=eid, candidates=found)

        await run_in_threadpool(store)


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
