"""The frontend's spec for the app factory: the web UI at ``/``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool

from frontend import flows
from frontend.aftercare import router as aftercare_router
from frontend.archive import router as archive_router
from frontend.database import db
from frontend.i18n import LANGUAGES, translations
from frontend.institution import router as institution_router
from frontend.live import router as live_router
from frontend.notifications import router as notifications_router
from frontend.operations import router as operations_router
from frontend.oversight import router as oversight_router
from frontend.paths import router as paths_router
from frontend.prosecutor import router as prosecutor_router
from frontend.registration import router as registration_router
from frontend.router import router
from frontend.shelter import router as shelter_router
from frontend.trail import router as trail_router
from frontend.transfer import router as transfer_router
from services.app import Runtime, ServiceSpec

log = logging.getLogger("canaliza.frontend")
PURGE_EVERY_SECONDS = 600


async def _startup(runtime: Runtime) -> None:
    for language in LANGUAGES:  # compile the catalogues now, not on the first page
        translations(language)
    runtime.spawn(_purge_loop(), "frontend-session-purge")


async def _purge_loop() -> None:
    while True:
        with contextlib.suppress(Exception):
            purged = await run_in_threadpool(flows.purge_expired)
            if purged:
                log.info("purged %d expired browser sessions", purged)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


def service() -> ServiceSpec:
    """The web UI: server-rendered pages, the live-feed proxy, static files."""
    return ServiceSpec(
        name="frontend",
        # Pages decide themselves between the sign-in page and content: no bearer token here.
        public_routers=[
            router,
            # Before the prosecutor's: /canalizaciones/apartados is not a referral id.
            transfer_router,
            prosecutor_router,
            operations_router,
            shelter_router,
            aftercare_router,
            archive_router,
            registration_router,
            paths_router,
            oversight_router,
            trail_router,
            institution_router,
            live_router,
            notifications_router,
        ],
        database=db,
        on_startup=[_startup],
        description="Interfaz web (español de México primero).",
    )
