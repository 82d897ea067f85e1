"""The auth service's spec for the app factory."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from auth.config import auth_settings
from auth.database import db, outbox
from auth.ratelimit import RATE_LIMITER_KEY, RateLimiter
from auth.router import public_router, router
from auth.service import bootstrap
from services.app import Runtime, ServiceSpec


async def _startup(runtime: Runtime) -> None:
    def _run() -> None:
        for session in db.session_scope(write=True):
            bootstrap(session, settings=runtime.settings)

    await run_in_threadpool(_run)
    cfg = auth_settings()
    runtime.state[RATE_LIMITER_KEY] = RateLimiter(
        per_minute=cfg.rate_limit_per_minute, burst=cfg.rate_limit_burst
    )


def service() -> ServiceSpec:
    """Users, clients and keys; the OAuth 2.1 / OpenID Connect provider."""
    return ServiceSpec(
        name="auth",
        routers=[router],
        public_routers=[public_router],
        database=db,
        outbox=outbox,
        on_startup=[_startup],
        description="Identidad: usuarios, clientes OAuth, llaves de firma.",
    )
