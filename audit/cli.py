"""``canaliza audit ...``: verify the trail from the command line."""

from __future__ import annotations

import json

import typer

from audit.database import db
from audit.projection import rebuild
from audit.service import make_checkpoint, verify

app = typer.Typer(help="Auditoría: verificación de la bitácora encadenada.")


@app.command("verify")
def verify_command() -> None:
    """Check the whole chain and its signed checkpoints; exit 1 on any tampering."""
    with db.unit_of_work(write=False) as session:
        result = verify(session)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if not result["ok"]:
        raise typer.Exit(code=1)


@app.command("checkpoint")
def checkpoint_command() -> None:
    """Sign the chain's current head."""
    with db.unit_of_work() as session:
        cp = make_checkpoint(session)
    typer.echo(f"Punto de control en la posición {cp.position if cp else 0}.")


@app.command("rebuild-roster")
def rebuild_roster_command() -> None:
    """Rebuild SEGOB's roster projection from the trail (visits are kept)."""
    with db.unit_of_work() as session:
        n = rebuild(session)
    typer.echo(f"Padrón reconstruido desde la bitácora: {n} instalaciones.")
