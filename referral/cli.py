"""``canaliza referral ...`` commands."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from referral import demo, importer
from referral.database import db
from referral.schemas import HistoricalReferral
from services.tokens import Principal
from services.vocabulary import UserRole

app = typer.Typer(help="Servicio de canalización: instituciones, convenios, canalizaciones.")

CLI_PRINCIPAL = Principal(sub="canaliza-cli:import-history", roles=frozenset({UserRole.SERVICE}))


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo institutions and the signed demo agreement (idempotent)."""
    db.migrate()
    with db.unit_of_work() as session:
        added = demo.load_demo(session)
    typer.echo(f"referral: {added} registros de demostración añadidos")


def _batches(path: Path, size: int) -> Iterator[list[HistoricalReferral]]:
    batch: list[HistoricalReferral] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                batch.append(HistoricalReferral.model_validate(json.loads(line)))
            except (ValueError, ValidationError) as exc:
                raise typer.BadParameter(f"línea {number}: {exc}") from exc
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


@app.command("import-history")
def import_history(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Canalizaciones en JSON lines")
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 2_000,
) -> None:
    """Import historical referrals (one JSON object per line) in their final states.

    Straight into this service's database, a batch per transaction; each batch's event
    reaches the audit trail through the outbox when the service runs. Re-running skips the
    referrals already stored.
    """
    db.migrate()
    started = time.perf_counter()
    totals = {"imported": 0, "already_present": 0, "expired": 0}
    for batch in _batches(file, batch_size):
        with db.unit_of_work() as session:
            result = importer.import_history(session, principal=CLI_PRINCIPAL, referrals=batch)
        for key in totals:
            totals[key] += getattr(result, key)
    typer.echo(
        f"referral: {totals['imported']:,} canalizaciones importadas, "
        f"{totals['already_present']:,} ya existían ({totals['expired']:,} vencidas sin "
        f"respuesta) en {time.perf_counter() - started:.1f} s"
    )
