"""Throwaway PostgreSQL and NATS servers of our own, for tests that stop and start them.

The machine's servers (5432, 4222) are shared with other test runs and CI: a fault test
never touches them. Each instance lives in its own temporary directory on a free loopback
port and is removed afterwards. PostgreSQL refuses to run as root, so when the tests run
as root the cluster belongs to the ``postgres`` OS user (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from canaliza.cluster import free_port
from tests.conftest import unavailable

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _pg_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def require_binary(name: str, path: Path | str | None) -> None:
    """Skip (locally) or fail (on CI) when a server binary a fault test starts is absent."""
    if path is not None and Path(path).exists():
        return
    unavailable(f"{name} binary not found ({path or 'not installed'})")


def _wait_port(port: int, *, up: bool, attempts: int = 300) -> None:
    for _ in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} never became {'reachable' if up else 'free'}")


class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory, trust authentication, loopback only."""

    def __init__(self) -> None:
        bin_dir = _pg_bin_dir()
        require_binary("PostgreSQL (initdb)", bin_dir / "initdb" if bin_dir else None)
        assert bin_dir is not None
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="canaliza-own-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> OwnPostgres:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        return self

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c max_connections=300 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")
        _wait_port(self.port, up=True)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: like a crash, recovery from the WAL at start)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        _wait_port(self.port, up=False)

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class OwnNats:
    """A NATS server with JetStream on file storage in a temporary directory."""

    def __init__(self) -> None:
        require_binary("nats-server", NATS_SERVER)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="canaliza-own-nats-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> OwnNats:
        log = (self.root / "nats.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [
                    NATS_SERVER,
                    "-js",
                    "-sd",
                    str(self.root / "js"),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        _wait_port(self.port, up=True)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL if it lingers); its stored streams remain."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        _wait_port(self.port, up=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
