"""``canaliza referral ...`` commands."""

from __future__ import annotations

import contextlib

import typer

from referral import service
from referral.database import db

app = typer.Typer(help="Servicio de canalización: instituciones, convenios, canalizaciones.")


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo institutions and the signed demo agreement (idempotent)."""
    db.migrate()
    with contextlib.contextmanager(db.session_scope)(write=True) as session:
        added = service.load_demo(session)
    typer.echo(f"referral: {added} registros de demostración añadidos")
