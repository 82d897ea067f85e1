"""``canaliza capacity ...``: operator commands for the capacity service."""

from __future__ import annotations

import typer
from rich.console import Console

from capacity.database import db
from capacity.holds import expire_holds
from capacity.ledger import ledger_mismatches

app = typer.Typer(help="Capacidad: reservas vencidas y verificación del libro de ocupación.")
console = Console()


@app.command("expire-holds")
def expire_holds_command() -> None:
    """Release every hold whose time is up (the server also does this on its own)."""
    with db.unit_of_work() as session:
        expired = expire_holds(session)
    console.print(f"{len(expired)} reserva(s) vencida(s) liberada(s).")


@app.command("verify-ledger")
def verify_ledger_command() -> None:
    """Check that every pool's counts equal the replay of its ledger; exit 1 if not."""
    with db.unit_of_work(write=False) as session:
        mismatches = ledger_mismatches(session)
    for m in mismatches:
        console.print(f"[red]{m['pool_id']}[/red]: guardado {m['stored']}, libro {m['replayed']}")
    if mismatches:
        raise typer.Exit(1)
    console.print("Todos los grupos de camas coinciden con su libro de ocupación.")
