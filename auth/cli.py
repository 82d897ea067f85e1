"""``canaliza auth ...``: operator commands for identities, clients and signing keys.

Each command migrates the auth database first (idempotent), works in one transaction and
records the same audit events as the API. Secrets are printed once and never stored.
"""

from __future__ import annotations

import contextlib
import secrets

import typer
from rich.console import Console
from rich.markup import escape
from sqlmodel import Session

from auth import service
from auth.database import db
from auth.keys import rotate_signing_key, seal_signing_keys
from services.at_rest import StorageError
from services.errors import CanalizaError

app = typer.Typer(help="Identidad: usuarios, clientes OAuth y llaves de firma.")
console = Console()


def _session() -> contextlib.AbstractContextManager[Session]:
    db.migrate()
    return db.unit_of_work()


def _fail(exc: CanalizaError) -> typer.Exit:
    console.print(f"[red]{exc.code}[/red]: {exc.detail}")
    return typer.Exit(1)


@app.command("create-user")
def create_user(
    username: str = typer.Argument(..., help="Nombre de usuario (único)"),
    role: list[str] = typer.Option(..., "--role", help="Rol; repetible"),
    institution_id: str | None = typer.Option(None, help="Institución a la que pertenece"),
    display_name: str | None = typer.Option(None, help="Nombre visible"),
    password: str | None = typer.Option(
        None, help="Contraseña (por omisión se genera y se muestra una vez)"
    ),
) -> None:
    """Create a user with the given roles."""
    secret = password or secrets.token_urlsafe(15)
    try:
        with _session() as session:
            user = service.create_user(
                session,
                username=username,
                display_name=display_name or username,
                password=secret,
                roles=role,
                institution_id=institution_id,
                actor="cli",
            )
            user_id = user.id
    except CanalizaError as exc:
        raise _fail(exc) from exc
    console.print(f"usuario {username} creado ({user_id}), roles {', '.join(sorted(role))}")
    if password is None:
        console.print(f"contraseña inicial: {secret}")


@app.command("reset-password")
def reset_password(
    username: str = typer.Argument(...),
    password: str | None = typer.Option(None, help="Nueva contraseña (por omisión se genera)"),
) -> None:
    """Set a new password and lift any lockout."""
    secret = password or secrets.token_urlsafe(15)
    with _session() as session:
        user = service.find_user(session, username)
        if user is None:
            console.print(f"[red]user_not_found[/red]: no existe {username!r}")
            raise typer.Exit(1)
        service.set_password(session, user=user, password=secret, actor="cli")
    console.print(f"contraseña de {username} restablecida")
    if password is None:
        console.print(f"contraseña nueva: {secret}")


@app.command("create-client")
def create_client(
    client_id: str = typer.Argument(...),
    name: str | None = typer.Option(None),
    grant: list[str] = typer.Option(
        ["client_credentials"], "--grant", help="authorization_code, refresh_token, …"
    ),
    redirect_uri: list[str] = typer.Option([], "--redirect-uri"),
    public: bool = typer.Option(False, help="Cliente público (PKCE, sin secreto)"),
    role: list[str] = typer.Option([], "--role", help="Roles de sus tokens de servicio"),
    institution_id: str | None = typer.Option(None),
    secret: str | None = typer.Option(None, help="Secreto (por omisión se genera)"),
) -> None:
    """Register an OAuth client; a confidential client's secret is shown once."""
    try:
        with _session() as session:
            created = service.create_client(
                session,
                client_id=client_id,
                name=name or client_id,
                grant_types=grant,
                redirect_uris=redirect_uri,
                public=public,
                roles=role,
                institution_id=institution_id,
                secret=secret,
            )
            shown = created.secret
    except CanalizaError as exc:
        raise _fail(exc) from exc
    console.print(f"cliente {client_id} registrado ({', '.join(grant)})")
    if shown and secret is None:
        console.print(f"secreto: {shown}")


@app.command("rotate-key")
def rotate_key() -> None:
    """Start signing with a new key; the old one stays published until its tokens expire.

    Needs the service's key-encryption key: the existing keys must open with it (else
    nothing changes), and the new one is encrypted with it.
    """
    try:
        with _session() as session:
            seal_signing_keys(session)
            key = rotate_signing_key(session)
            kid = key.kid
    except StorageError as exc:
        console.print(f"[red]key_encryption_key[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"nueva llave de firma: {kid}")
