"""The auth service's spec for the app factory."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool

from auth import institutions
from auth.config import auth_settings
from auth.database import db, outbox
from auth.federation import (
    FEDERATION_KEY,
    Federation,
    FederationSessionMiddleware,
    load_providers,
)
from auth.ratelimit import LOCKOUTS, RATE_LIMITER_KEY, RateLimiter
from auth.router import public_router, router
from auth.service import bootstrap
from services.app import Runtime, ServiceSpec
from services.settings import get_settings


async def _startup(runtime: Runtime) -> None:
    def _run() -> None:
        with db.unit_of_work() as session:
            bootstrap(session, settings=runtime.settings)

    await run_in_threadpool(_run)
    if runtime.bus is not None:
        # Learn the referral service's institutions, replaying what the stream still holds.
        runtime.state["auth_institution_feed"] = await runtime.bus.subscribe(
            institutions.INSTITUTION_SUBJECT,
            institutions.event_handler(),
            deliver_from=await runtime.bus.first_sequence(),
        )
    runtime.state[FEDERATION_KEY] = Federation(load_providers(auth_settings().federation_file))
    cfg = auth_settings()
    LOCKOUTS.clear()  # a new app starts with no lock (tests build one per case)
    runtime.state[RATE_LIMITER_KEY] = RateLimiter(
        per_minute=cfg.rate_limit_per_minute, burst=cfg.rate_limit_burst
    )


async def _shutdown(runtime: Runtime) -> None:
    feed = runtime.state.pop("auth_institution_feed", None)
    if feed is not None:
        await feed.close()


def service() -> ServiceSpec:
    """Users, clients and keys; the OAuth 2.1 / OpenID Connect provider."""
    settings = get_settings()
    # Authlib's Starlette client keeps the federation flow's state in request.session.
    session_cookie = {
        "secret_key": auth_settings().session_secret or secrets.token_urlsafe(32),
        "session_cookie": "canaliza_federation",
        "max_age": 600,
        "same_site": "lax",
        "https_only": settings.base_url().startswith("https://"),
    }
    return ServiceSpec(
        name="auth",
        routers=[router],
        public_routers=[public_router],
        database=db,
        outbox=outbox,
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        description="Identidad: usuarios, clientes OAuth, llaves de firma.",
        middleware=[(FederationSessionMiddleware, session_cookie)],
    )
