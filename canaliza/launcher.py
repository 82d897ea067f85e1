"""The ``canaliza`` command (also ``python -m canaliza``): serves, migrates and seeds the
services that :mod:`canaliza.composition` finds.

    canaliza serve all            # every service in one process (embedded default)
    canaliza serve capacity       # one service on its own (Postgres + NATS in production)
    canaliza migrate [SERVICE...]
    canaliza demo                 # migrate, load demo data if empty, serve all
Domain packages may add command groups through a ``cli.py`` exposing ``app`` (Typer).
"""

from __future__ import annotations

import importlib
import os
import signal
import tempfile
import time
from typing import Any

import typer
import uvicorn
from alembic import command
from fastapi import FastAPI
from rich.console import Console

from canaliza import seed
from canaliza.cluster import Cluster, ClusterError, stop_recorded
from canaliza.composition import (
    DOMAIN_PACKAGES,
    available_packages,
    build_app,
    has_module,
    load_spec,
    load_specs,
)
from canaliza.gateway import Gateway, create_gateway
from canaliza.seed.cli import COMMANDS as SEED_COMMANDS
from services.app import freeze_startup_heap, tune_collector
from services.at_rest import restrict_umask
from services.db import alembic_config
from services.observability import configure_logging
from services.settings import Settings, get_settings

# How long an idle keep-alive connection stays open. Longer than the idle expiry of the
# gateway's upstream pool and of common clients, so that the client, not the server, is
# the one to close an idle connection: a request never races the server closing it.
KEEP_ALIVE_SECONDS = 30

console = Console(stderr=True)
cli = typer.Typer(
    help="Canaliza: capacidad de refugios y canalización de víctimas de trata.",
    no_args_is_help=True,
)


def app_all() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory canaliza.launcher:app_all``."""
    target = os.environ.get("CANALIZA_SERVE", "all")
    configure_logging(target)
    tune_collector()
    return build_app(target, extra_startup=[freeze_startup_heap])


def app_gateway() -> Gateway:
    """uvicorn factory of the gateway (reverse proxy in front of separate services)."""
    configure_logging("gateway")
    return create_gateway()


def listen_on(host: str | None, port: int | None) -> Settings:
    """Make ``--host`` / ``--port`` this process's settings, then return them.

    They go into the environment (``CANALIZA_HOST`` / ``CANALIZA_PORT``) so that the app
    built by uvicorn's factory, and any worker process it forks, sees them too: the
    service's base URL and token issuer then name the port it really listens on, unless
    ``CANALIZA_PUBLIC_URL`` (or ``CANALIZA_ISSUER``) says otherwise.
    """
    if host:
        os.environ["CANALIZA_HOST"] = host
    if port:
        os.environ["CANALIZA_PORT"] = str(port)
    get_settings.cache_clear()
    return get_settings()


def uvicorn_limits(settings: Settings) -> dict[str, Any]:
    """The server's own input limits (before the app sees a byte).

    A WebSocket message over ``max_ws_message_bytes`` is refused by the protocol layer
    (close 1009) as soon as its frame header announces it, never buffered whole; the live
    feed's own size check is the second line. Header blocks beyond the app's limit (431)
    plus a margin are refused by the HTTP parser.
    """
    return {
        "ws_max_size": settings.max_ws_message_bytes,
        "h11_max_incomplete_event_size": settings.max_header_bytes + 8_192,
    }


@cli.command()
def serve(
    target: str = typer.Argument("all", help="all, or one of: " + ", ".join(DOMAIN_PACKAGES)),
    host: str | None = typer.Option(None, help="Default CANALIZA_HOST or 127.0.0.1"),
    port: int | None = typer.Option(None, help="Default CANALIZA_PORT or 8000"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
) -> None:
    """Serve ``all`` services in one process, or a single one."""
    settings = listen_on(host, port)
    os.environ["CANALIZA_SERVE"] = target
    console.print(f"[bold]Canaliza[/bold] {target} → {settings.base_url()}")
    uvicorn.run(
        "canaliza.launcher:app_all",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="info",
        access_log=False,  # the kernel writes one JSON line per request instead
        proxy_headers=True,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **uvicorn_limits(settings),
    )


@cli.command()
def gateway(
    host: str | None = typer.Option(None, help="Default CANALIZA_HOST or 127.0.0.1"),
    port: int | None = typer.Option(None, help="Default CANALIZA_PORT or 8000"),
) -> None:
    """Serve the gateway: one public port routing to services given by CANALIZA_<SERVICE>_URL."""
    settings = listen_on(host, port)
    uvicorn.run(
        "canaliza.launcher:app_gateway",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        proxy_headers=True,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


cluster_cli = typer.Typer(help="The distributed topology on this machine, without Docker.")
cli.add_typer(cluster_cli, name="cluster")


@cluster_cli.command("up")
def cluster_up(
    database: str = typer.Option("canaliza", help="PostgreSQL database (created if absent)"),
    pg_admin_url: str = typer.Option(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="A PostgreSQL URL allowed to create the database",
    ),
    nats_url: str = typer.Option("nats://127.0.0.1:4222"),
    port: int = typer.Option(8000, help="The gateway's public port"),
    capacity_replicas: int = typer.Option(2, min=1),
    demo: bool = typer.Option(
        False, help="Demo users (password grant allowed) and the demo data, as `make run`"
    ),
    detach: bool = typer.Option(False, help="Return once ready; stop with `cluster down`"),
    nats_stream: str = typer.Option("CANALIZA", help="JetStream stream of this deployment"),
    nats_subject_prefix: str = typer.Option(
        "canaliza", help="Its subjects' prefix (streams on one NATS may not overlap)"
    ),
) -> None:
    """Start auth, capacity ×N, referral, audit, frontend (if any), gateway; Ctrl-C stops all."""
    cluster = Cluster(
        database=database,
        pg_admin_url=pg_admin_url,
        nats_url=nats_url,
        nats_stream=nats_stream,
        nats_subject_prefix=nats_subject_prefix,
        gateway_port=port,
        capacity_replicas=capacity_replicas,
        demo=demo,
    )
    try:
        cluster.start()
    except ClusterError as exc:
        console.print(f"[red]cluster failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for member in cluster.members.values():
        console.print(f"  {member.name:<12} {member.url}  (log {member.log_path})")
    if demo:
        with console.status("loading the demo data through the gateway…"):
            report = seed.load_demo_at(cluster.gateway_url)
        console.print(
            f"demo data: {report.skipped_reason or dict(report.created)}"
            + (f" — {len(report.failures)} errors" if report.failures else "")
        )
    console.print(f"[bold]Canaliza cluster ready[/bold] → {cluster.gateway_url}")
    if detach:
        return

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        while all(m.alive() for m in cluster.members.values()):
            time.sleep(1)
        gone = [m.name for m in cluster.members.values() if not m.alive()]
        console.print(f"[red]stopped unexpectedly:[/red] {', '.join(gone)}")
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping the cluster…")
        cluster.stop()


@cluster_cli.command("down")
def cluster_down() -> None:
    """Stop the processes of a detached ``cluster up``."""
    stopped = stop_recorded()
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@cli.command()
def migrate(services: list[str] = typer.Argument(None, help="Default: every service")) -> None:
    """Apply the Alembic migrations of the given services (default: all)."""
    names = services or available_packages()
    for spec in load_specs(names):
        if spec.database is not None:
            spec.database.migrate()
            console.print(f"migrated [bold]{spec.name}[/bold] ({spec.database.url.split('@')[-1]})")


@cli.command()
def makemigration(
    service: str = typer.Argument(..., help="The service whose models changed"),
    message: str = typer.Option(..., "-m", "--message"),
) -> None:
    """Autogenerate a revision for one service against a scratch SQLite database."""
    spec = load_spec(service)
    assert spec.database is not None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/scratch.db"
        cfg = alembic_config(service, url, spec.database.metadata)
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


@cli.command()
def demo(host: str | None = typer.Option(None), port: int | None = typer.Option(None)) -> None:
    """The main job: migrate, load the demo data if the databases are empty, serve all."""
    os.environ["CANALIZA_DEMO"] = "1"
    listen_on(host, port)  # the demo data is loaded under the issuer it will be served as
    migrate(services=[])
    seed.load_demo_if_empty()
    serve(target="all", host=host, port=port, workers=1)


def _register_subcommands() -> None:
    """The command groups the domain packages present bring, then ``seed``."""
    for package in DOMAIN_PACKAGES:
        if has_module(f"{package}.cli"):
            module = importlib.import_module(f"{package}.cli")
            for name, sub in getattr(module, "COMMANDS", {}).items():
                cli.command(name)(sub)
            if hasattr(module, "app"):
                cli.add_typer(module.app, name=package)
    for name, sub in SEED_COMMANDS.items():
        cli.command(name)(sub)


def main() -> None:
    restrict_umask()  # every file a command writes (databases, keys, exports) is private
    _register_subcommands()
    cli()


if __name__ == "__main__":
    main()
