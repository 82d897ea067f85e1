"""Synthetic, Mexico-shaped data for demos, benchmarks and statistics (no real victims).

``generate`` builds a dataset deterministically from a seed; ``load_dataset`` posts it to a
running Canaliza through the public API; ``import_history`` exports the historical
referrals and imports them in bulk into the referral service (the audit trail follows);
``load_demo_if_empty`` is what ``canaliza demo`` calls before serving.

Part of the composition root: it builds the all-services app through
:mod:`canaliza.composition`, and never imports a domain package directly (the data goes
through the public API).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from canaliza.composition import available_packages, build_app
from canaliza.seed.generator import REFERENCE_DATE, SCALES, Dataset, generate, pool_admits
from canaliza.seed.history import (
    HistoryImportReport,
    export_history,
    import_history,
    load_history,
)
from canaliza.seed.loader import Credentials, LoadError, LoadReport, load_dataset
from services.settings import get_settings

__all__ = [
    "REFERENCE_DATE",
    "SCALES",
    "Credentials",
    "Dataset",
    "HistoryImportReport",
    "LoadError",
    "LoadReport",
    "export_history",
    "generate",
    "import_history",
    "load_dataset",
    "load_demo_at",
    "load_demo_if_empty",
    "load_demo_into_app",
    "load_history",
    "pool_admits",
]

log = logging.getLogger("canaliza.seed")

DEMO_SEED = 2026


def demo_credentials() -> Credentials:
    """``admin`` with the demo password (the password grant exists only in demo mode)."""
    return Credentials(username="admin", password=get_settings().demo_password)


def service_credentials() -> Credentials | None:
    """The internal service client's credentials, known once the auth service has started
    in this process (it generates the secret when none is configured)."""
    settings = get_settings()
    if not (settings.service_client_id and settings.service_client_secret):
        return None
    return Credentials(
        client_id=settings.service_client_id, client_secret=settings.service_client_secret
    )


async def load_demo_into_app(
    app: Any, *, seed: int = DEMO_SEED, credentials: Credentials | None = None
) -> LoadReport:
    """Run ``app``'s lifespan and load whatever part of the demo dataset it lacks.

    The load is idempotent (existing institutions, facilities and agreements are skipped),
    so a roster that is already complete costs three list calls and changes nothing, while
    one loaded before a service was merged (say, agreements before the referral service
    existed) is completed on the next start.
    """
    dataset = generate("demo", seed)
    credentials = credentials or demo_credentials()
    async with app.router.lifespan_context(app):
        report = await load_dataset(dataset, app=app, credentials=credentials, progress=False)
        service = service_credentials()
        if service is not None and not report.failures:
            # idempotent: a history already imported answers "already present"
            _, report.history = await import_history(
                dataset,
                app=app,
                credentials=service,
                audit_credentials=credentials,
                facility_ids=report.ids,
            )
            report.failures.extend(report.history.failures)
        else:
            await load_history(dataset, facility_ids=report.ids)
    imported = report.history.imported if report.history else 0
    if sum(report.created.values()) == 0 and imported == 0:
        report.skipped_reason = "los datos de demostración ya estaban cargados"
    return report


def load_demo_if_empty(seed: int = DEMO_SEED) -> LoadReport | None:
    """Load the demo dataset into the all-services app where it is missing (idempotent).

    Returns the report, or ``None`` when the app cannot take it yet (no auth service, so
    no token). Called by ``canaliza demo`` before it starts serving.
    """
    if "auth" not in available_packages():
        log.warning("seed: no auth service in this build; demo data not loaded")
        return None
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)  # SQLite files live there
    app = build_app("all")
    report = asyncio.run(load_demo_into_app(app, seed=seed))
    if report.skipped_reason:
        log.info("seed: %s; demo data not loaded again", report.skipped_reason)
    else:
        log.info("seed: demo data loaded in %.1f s: %s", report.seconds, dict(report.created))
    for failure in report.failures[:20]:
        log.warning("seed: %s", failure)
    return report


def load_demo_at(base_url: str, seed: int = DEMO_SEED) -> LoadReport:
    """Load the demo dataset into the Canaliza at ``base_url`` (for example the gateway of
    ``canaliza cluster up --demo``) through its public API, where it is missing."""
    dataset = generate("demo", seed)
    report = asyncio.run(
        load_dataset(dataset, base_url=base_url, credentials=demo_credentials(), progress=False)
    )
    if sum(report.created.values()) == 0:
        report.skipped_reason = "los datos de demostración ya estaban cargados"
    return report
