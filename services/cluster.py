"""The distributed topology on one machine, without Docker: ``canaliza cluster up``.

Each service runs as its own process (capacity twice; the web UI too when the
``frontend`` package exists) against the machine's PostgreSQL (one database, a schema
per service) and NATS, behind the gateway on one public port —
the same shape as ``docker-compose.yml``. One service-client secret is generated per run
and given to every process; the auth service registers it at start-up and the others use
it for client-credentials tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.at_rest import (
    KEK_ENV,
    KEK_FILE_ENV,
    KEK_PREVIOUS_ENV,
    PRIVATE_FILE_MODE,
    private_dir,
    write_private_file,
)
from services.settings import ROOT

DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLUSTER_SERVICES = ("auth", "capacity", "referral", "audit")
# The services keeping private keys at rest, and only they, get the key-encryption key of
# the environment (without one they share the generated ``var/secrets/kek``).
KEY_HOLDERS = ("auth", "audit")
KEK_VARIABLES = (KEK_ENV, KEK_FILE_ENV, KEK_PREVIOUS_ENV)


class ClusterError(RuntimeError):
    """The topology could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _has_service(package: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(f"{package}.main") is not None
    except ModuleNotFoundError:
        return False


def _nats_bus_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("services.bus_nats") is not None


@dataclass
class Member:
    """One process of the topology."""

    name: str
    args: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Cluster:
    """Starts, watches and stops the processes of the local topology."""

    database: str = "canaliza"
    pg_admin_url: str = DEFAULT_PG_ADMIN
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "CANALIZA"
    nats_subject_prefix: str = "canaliza"
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    capacity_replicas: int = 2
    log_dir: Path = ROOT / "var" / "cluster"
    demo: bool = False
    bus: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    service_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The web UI's OAuth client secret, shared by auth (which registers it) and frontend.
    frontend_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def database_url(self) -> str:
        return self.pg_admin_url.rsplit("/", 1)[0] + f"/{self.database}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    def services(self) -> list[str]:
        """The services of this checkout, in start order (the web UI when it exists)."""
        return [s for s in (*CLUSTER_SERVICES, "frontend") if _has_service(s)]

    # --- plan ------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """The environment every process shares."""
        bus = self.bus or ("nats" if _nats_bus_available() else "inprocess")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CANALIZA_") or k in ("CANALIZA_DEMO_PASSWORD",)
        }
        env.update(
            {
                "CANALIZA_DATABASE_URL": self.database_url,
                "CANALIZA_AUTO_MIGRATE": "false",
                "CANALIZA_BUS": bus,
                "CANALIZA_NATS_URL": self.nats_url,
                "CANALIZA_NATS_STREAM": self.nats_stream,
                "CANALIZA_NATS_SUBJECT_PREFIX": self.nats_subject_prefix,
                "CANALIZA_PUBLIC_URL": self.gateway_url,
                "CANALIZA_ISSUER": self.gateway_url,
                "CANALIZA_SERVICE_CLIENT_ID": "canaliza-services",
                "CANALIZA_SERVICE_CLIENT_SECRET": self.service_secret,
                "CANALIZA_FRONTEND_CLIENT_SECRET": self.frontend_secret,
                "CANALIZA_DEMO": "1" if self.demo else "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def plan(self) -> list[Member]:
        """The processes to start, with their ports and environment (nothing started)."""
        if self.members:
            return list(self.members.values())
        services = self.services()
        ports: dict[str, list[int]] = {}
        for name in services:
            count = self.capacity_replicas if name == "capacity" else 1
            ports[name] = [free_port(self.host) for _ in range(count)]
        direct = {name: f"http://{self.host}:{p[0]}" for name, p in ports.items()}
        common = self.base_env()
        # Services reach auth and the others directly; capacity through the gateway, which
        # spreads calls over its replicas and fails over when one is gone.
        for name in services:
            common[f"CANALIZA_{name.upper()}_URL"] = (
                self.gateway_url if name == "capacity" else direct[name]
            )
        common["CANALIZA_JWKS_URL"] = direct["auth"] + "/auth/jwks" if "auth" in direct else ""
        members: list[Member] = []
        py = sys.executable
        for name in services:
            for i, port in enumerate(ports[name]):
                label = name if len(ports[name]) == 1 else f"{name}-{i + 1}"
                env = dict(common, CANALIZA_PORT=str(port), CANALIZA_HOST=self.host)
                if name == "auth":
                    env.pop("CANALIZA_JWKS_URL", None)  # auth checks its own keys in-process
                if name in KEY_HOLDERS:  # the operator's key-encryption key, if set
                    env.update({k: os.environ[k] for k in KEK_VARIABLES if k in os.environ})
                members.append(
                    Member(
                        label,
                        [py, "-m", "services.launcher", "serve", name, "--port", str(port)],
                        port,
                        env,
                    )
                )
        gw_env = dict(common, CANALIZA_PORT=str(self.gateway_port), CANALIZA_HOST=self.host)
        for name in services:
            gw_env[f"CANALIZA_{name.upper()}_URL"] = ",".join(
                f"http://{self.host}:{p}" for p in ports[name]
            )
        members.append(
            Member(
                "gateway",
                [py, "-m", "services.launcher", "gateway", "--port", str(self.gateway_port)],
                self.gateway_port,
                gw_env,
            )
        )
        self.members = {m.name: m for m in members}
        return members

    # --- life cycle ------------------------------------------------------------------

    def create_database(self) -> None:
        """Create the database if it does not exist yet."""
        import sqlalchemy as sa

        admin = sa.create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": self.database}
                ).first()
                if not exists:
                    conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        except sa.exc.OperationalError as exc:
            raise ClusterError(f"PostgreSQL no responde en {self.pg_admin_url}: {exc}") from exc
        finally:
            admin.dispose()

    def migrate(self) -> None:
        """Apply every service's migrations once, before any replica starts."""
        env = self.base_env()
        result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "services.launcher", "migrate", *self.services()],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise ClusterError("migration failed:\n" + result.stderr.decode(errors="replace"))

    def start_member(self, member: Member) -> None:
        """Start (or restart) one process; its output goes to ``<log_dir>/<name>.log``.

        The directory is ``0700`` and each log ``0600``: logs are for the operator only.
        """
        private_dir(self.log_dir)
        member.log_path = self.log_dir / f"{member.name}.log"
        fd = os.open(member.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        os.fchmod(fd, PRIVATE_FILE_MODE)  # a log an older version left readable
        log = os.fdopen(fd, "ab")
        try:
            member.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                member.args,
                env=member.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches only the launcher
            )
        finally:
            log.close()

    def start(self, *, timeout: float = 90.0) -> None:
        """Create the database, migrate, start every process and wait until all are ready."""
        self.create_database()
        self.migrate()
        members = self.plan()
        try:
            for member in members:
                self.start_member(member)
            self.wait_ready(members, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.write_state()

    def wait_ready(self, members: list[Member], *, timeout: float = 90.0) -> None:
        """Poll each process's ``/readyz`` until it answers 200."""
        deadline = time.monotonic() + timeout
        pending = list(members)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for member in list(pending):
                    if not member.alive():
                        raise ClusterError(f"{member.name} exited early:\n{self.log_tail(member)}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(member.url + "/readyz").status_code == 200:
                            pending.remove(member)
                if pending and time.monotonic() > deadline:
                    names = ", ".join(m.name for m in pending)
                    raise ClusterError(f"not ready after {timeout:.0f}s: {names}")
                if pending:
                    time.sleep(0.3)

    def log_tail(self, member: Member, lines: int = 30) -> str:
        if member.log_path is None or not member.log_path.exists():
            return ""
        return "\n".join(member.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop_member(self, member: Member, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop one process: SIGTERM (or SIGKILL), then SIGKILL if it lingers."""
        proc = member.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Stop every process this cluster started (gateway first)."""
        for member in reversed(list(self.members.values())):
            self.stop_member(member)
        with contextlib.suppress(FileNotFoundError):
            self.state_path().unlink()

    def state_path(self) -> Path:
        return self.log_dir / "cluster.json"

    def write_state(self) -> None:
        """Record the pids so ``canaliza cluster down`` can stop them from another shell."""
        state = {
            "gateway": self.gateway_url,
            "database": self.database,
            "pids": {m.name: m.process.pid for m in self.members.values() if m.process},
        }
        write_private_file(self.state_path(), json.dumps(state, indent=2).encode())

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_recorded(log_dir: Path = ROOT / "var" / "cluster") -> list[str]:
    """Stop the processes a detached ``cluster up`` recorded; the names stopped."""
    path = log_dir / "cluster.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    stopped = []
    for name, pid in reversed(list(state.get("pids", {}).items())):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGTERM)
            stopped.append(name)
    path.unlink()
    return stopped


def unique_name(prefix: str = "canaliza_cluster") -> str:
    """A database/stream name no other run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
