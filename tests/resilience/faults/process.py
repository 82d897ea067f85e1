"""A capacity service process of its own (``canaliza serve capacity``) for fault tests.

Tokens are the tests' own (``make_token``): the process fetches the test signing key from
a JWKS served on a free loopback port.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from canaliza.cluster import free_port
from services.settings import ROOT


@contextlib.contextmanager
def jwks_server(jwks: dict[str, Any]) -> Iterator[str]:
    """Serve the test signing key's public JWKS on a free loopback port."""
    body = json.dumps(jwks).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    finally:
        server.shutdown()
        server.server_close()


class CapacityProcess:
    """``canaliza serve capacity`` in its own process, output to a log file."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> None:
        args = [sys.executable, "-m", "canaliza.launcher", "serve", "capacity"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*args, "--port", str(self.port)],
                env={**self.env, **extra_env},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        for _ in range(600):  # bounded by attempts
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"exited early:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            threading.Event().wait(0.1)
        raise AssertionError("capacity never became ready")

    def wait_exit(self) -> int | None:
        assert self.process is not None
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def capacity_env(tmp_path: Path, jwks_url: str, issuer: str, **settings: str) -> dict[str, str]:
    """The environment of a capacity process: no inherited ``CANALIZA_*``, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANALIZA_")}
    env.update(
        CANALIZA_DATA_DIR=str(tmp_path / "var"),
        CANALIZA_AUTO_MIGRATE="true",
        CANALIZA_JWKS_URL=jwks_url,
        CANALIZA_ISSUER=issuer,
        CANALIZA_PUBLIC_URL=issuer,
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env
