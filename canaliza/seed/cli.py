"""``canaliza seed``: generate the synthetic dataset, then load or export it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from canaliza.composition import build_app
from canaliza.seed import service_credentials
from canaliza.seed.generator import SCALES, SCENARIOS, Dataset, generate
from canaliza.seed.history import export_history, import_history, load_history
from canaliza.seed.loader import Credentials, LoadReport, load_dataset
from services.app import tune_collector
from services.settings import get_settings

console = Console(stderr=True)


def export_dataset(dataset: Dataset, out_dir: Path) -> dict[str, Path]:
    """Write the dataset as JSON files (one per part) plus the history rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, part in dataset.parts().items():
        if name == "referrals":
            continue  # JSON lines, written by export_history
        path = out_dir / f"{name}.json"
        path.write_text(
            json.dumps(part, ensure_ascii=False, sort_keys=True, indent=1) + "\n",
            encoding="utf-8",
        )
        written[name] = path
    written.update(export_history(dataset, out_dir))
    return written


def _counts_table(dataset: Dataset, seconds: float) -> Table:
    table = Table(title=f"Datos sintéticos — escala {dataset.scale}, semilla {dataset.seed}")
    table.add_column("conjunto")
    table.add_column("registros", justify="right")
    for name, n in dataset.counts().items():
        table.add_row(name, f"{n:,}")
    table.caption = f"generado en {seconds:.1f} s (fecha de referencia {dataset.reference_date})"
    return table


def _report_table(report: LoadReport) -> Table:
    table = Table(title=f"Carga en {report.seconds:.1f} s")
    table.add_column("recurso")
    table.add_column("creados", justify="right")
    table.add_column("ya existían", justify="right")
    for name in sorted(set(report.created) | set(report.skipped)):
        table.add_row(name, str(report.created[name]), str(report.skipped[name]))
    return table


async def _load_and_import(
    dataset: Dataset,
    credentials: Credentials,
    service: Credentials | None,
    concurrency: int,
    *,
    bulk: bool,
    without_service: str,
    app: Any = None,
    base_url: str | None = None,
) -> LoadReport:
    """Load the roster into ``app`` or ``base_url``, then import the history with the
    service token (without one the history is only exported: ``without_service`` says so)."""
    target: dict[str, Any] = {"app": app} if app is not None else {"base_url": base_url}
    report = await load_dataset(
        dataset,
        credentials=credentials,
        concurrency=concurrency,
        bulk_credentials=service if bulk else None,
        **target,
    )
    if service is None:
        report.warnings.append(without_service)
        await load_history(dataset, facility_ids=report.ids)
        return report
    with console.status(f"Importando {len(dataset.referrals):,} canalizaciones históricas…"):
        _, report.history = await import_history(
            dataset,
            credentials=service,
            audit_credentials=credentials,
            facility_ids=report.ids,
            **target,
        )
    report.failures.extend(report.history.failures)
    return report


async def _load_in_process(
    dataset: Dataset, credentials: Credentials, concurrency: int, *, bulk: bool = True
) -> LoadReport:
    """Load the roster and import the history into the all-services app of this process."""
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)  # SQLite files live there
    started = time.perf_counter()
    app = build_app("all")
    async with app.router.lifespan_context(app):
        startup = time.perf_counter() - started  # migrations, keys, demo users
        report = await _load_and_import(
            dataset,
            credentials,
            service_credentials(),
            concurrency,
            bulk=bulk,
            without_service="sin credenciales de servicio: el historial solo se exporta",
            app=app,
        )
    report.phase_seconds = {"startup": startup, **report.phase_seconds}
    return report


async def _load_remote(
    dataset: Dataset,
    url: str,
    credentials: Credentials,
    service: Credentials | None,
    concurrency: int,
    *,
    bulk: bool = True,
) -> LoadReport:
    return await _load_and_import(
        dataset,
        credentials,
        service,
        concurrency,
        bulk=bulk,
        without_service=(
            "el historial solo se exporta: importarlo requiere un token de servicio "
            "(--client-id/--client-secret o --token)"
        ),
        base_url=url,
    )


def _phases_table(phases: dict[str, float]) -> Table:
    table = Table(title="Tiempo por fase")
    table.add_column("fase")
    table.add_column("segundos", justify="right")
    for name, seconds in phases.items():
        table.add_row(name, f"{seconds:,.1f}")
    table.add_row("[bold]total[/bold]", f"[bold]{sum(phases.values()):,.1f}[/bold]")
    return table


def phases_of(generate_seconds: float, report: LoadReport) -> dict[str, float]:
    """Seconds per phase of a whole seed run, in order."""
    phases = {"generar": generate_seconds}
    labels = {
        "startup": "arranque (migraciones, llaves, usuarios)",
        "institutions": "instituciones",
        "facilities": "instalaciones, bolsas y ocupación",
        "agreements": "convenios y firmas",
        "oversight": "padrón de SEGOB: registros y visitas",
    }
    for key, label in labels.items():
        if key in report.phase_seconds:
            phases[label] = report.phase_seconds[key]
    history = report.history
    if history is not None:
        phases["historial: importación"] = history.import_seconds
        if history.audit_seconds is not None:
            phases["historial: bitácora de auditoría"] = history.audit_seconds
    return phases


def seed(
    scale: Annotated[str, typer.Option(help="demo | national | stress")] = "demo",
    seed: Annotated[
        int, typer.Option(help="Semilla: la misma da exactamente los mismos datos")
    ] = 2026,
    url: Annotated[
        str | None,
        typer.Option(
            help="Canaliza destino, p. ej. http://127.0.0.1:8000 (por omisión: en proceso)"
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(help="Escribir los datos como JSON en este directorio en vez de cargarlos"),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="CANALIZA_TOKEN", help="Token Bearer ya obtenido")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="Credenciales de cliente (client_credentials)")
    ] = None,
    client_secret: Annotated[str | None, typer.Option(envvar="CANALIZA_SEED_CLIENT_SECRET")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Peticiones simultáneas")] = 8,
    bulk: Annotated[
        bool,
        typer.Option(
            help="Instituciones y padrón en bloque (token de servicio) en vez de una petición "
            "por registro"
        ),
    ] = True,
    scenario: Annotated[
        list[str] | None, typer.Option(help=f"Escenarios opcionales: {', '.join(SCENARIOS)}")
    ] = None,
) -> None:
    """Generate Mexico-shaped synthetic data (no real person) and load or export it."""
    if scale not in SCALES:
        raise typer.BadParameter(f"escala desconocida {scale!r}: use {' o '.join(SCALES)}")
    tune_collector()  # a bulk load's batches die young (services.app.COLLECTOR_THRESHOLDS)
    started = time.perf_counter()
    with console.status(f"Generando la escala {scale}…"):
        dataset = generate(scale, seed, scenarios=tuple(scenario or ()))
    console.print(_counts_table(dataset, time.perf_counter() - started))

    if export is not None:
        t0 = time.perf_counter()
        written = export_dataset(dataset, export)
        for name, path in written.items():
            console.print(f"  {name}: {path}")
        console.print(f"exportado en {time.perf_counter() - t0:.1f} s")
        return

    generate_seconds = time.perf_counter() - started
    settings = get_settings()
    service: Credentials | None = None
    if token:
        credentials = service = Credentials(token=token)
    elif client_secret:
        credentials = service = Credentials(
            client_id=client_id or settings.service_client_id, client_secret=client_secret
        )
    else:
        # the password grant as ``admin`` exists only in demo mode (the contract)
        credentials = Credentials(username="admin", password=settings.demo_password)
    if url is None and not token and not client_secret:
        os.environ["CANALIZA_DEMO"] = "1"  # in-process load of the embedded demo deployment
        get_settings.cache_clear()
    if url:
        report = asyncio.run(
            _load_remote(dataset, url, credentials, service, concurrency, bulk=bulk)
        )
    else:
        report = asyncio.run(_load_in_process(dataset, credentials, concurrency, bulk=bulk))
    console.print(_report_table(report))
    for warning in dict.fromkeys(report.warnings):
        console.print(f"[yellow]aviso:[/yellow] {warning}")
    history = report.history
    if history is not None:
        console.print(
            f"historial: {history.imported:,} canalizaciones importadas, "
            f"{history.already_present:,} ya existían, {history.expired:,} vencidas sin "
            f"respuesta; {len(history.events):,} lotes en la bitácora"
            + ("" if history.audit_recorded else " (la bitácora aún no los registra)")
        )
    console.print(_phases_table(phases_of(generate_seconds, report)))
    if report.failures:
        for failure in report.failures[:20]:
            console.print(f"[red]error:[/red] {failure}")
        console.print(f"[red]{len(report.failures)} errores[/red]")
        raise typer.Exit(code=1)


COMMANDS = {"seed": seed}
