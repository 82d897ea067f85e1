"""docker-compose.yml (Docker does not run here): it parses and agrees with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.launcher import DOMAIN_PACKAGES, _has_module
from services.settings import SERVICE_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _apps(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("command", [None])[0] == "canaliza"
    }


def test_every_service_of_the_topology_is_there(compose):
    services = compose["services"]
    assert {"postgres", "nats", "migrate", "gateway"} <= set(services)
    served = {}
    for name, svc in _apps(compose).items():
        command = svc["command"]
        if command[1] == "serve":
            assert command[2] in DOMAIN_PACKAGES, name
            served.setdefault(command[2], []).append(name)
    assert set(served) == {*SERVICE_NAMES, "frontend"}
    assert len(served["capacity"]) == 2
    assert services["gateway"]["environment"]["CANALIZA_FRONTEND_URL"] == "http://frontend:8000"
    assert "--jetstream" in services["nats"]["command"]
    assert (ROOT / "Dockerfile").exists()
    assert all(svc.get("build") == "." for svc in _apps(compose).values())


def test_every_variable_set_is_a_setting(compose):
    fields = {f"CANALIZA_{name.upper()}" for name in Settings.model_fields}
    if not _has_module("frontend.main"):
        # The web UI's settings come with the frontend package (built apart, merged later).
        fields.add("CANALIZA_FRONTEND_CLIENT_SECRET")
    for name, svc in _apps(compose).items():
        env = svc.get("environment") or {}
        unknown = {k for k in env if k.startswith("CANALIZA_")} - fields
        assert not unknown, (name, unknown)


def test_each_service_gets_what_it_needs(compose):
    apps = _apps(compose)
    for name, svc in apps.items():
        env = svc["environment"]
        if name == "gateway":
            replicas = env["CANALIZA_CAPACITY_URL"].split(",")
            assert replicas == ["http://capacity-1:8000", "http://capacity-2:8000"]
            for other in ("AUTH", "REFERRAL", "AUDIT", "FRONTEND"):
                assert env[f"CANALIZA_{other}_URL"].startswith("http://")
            assert svc["ports"] and svc["ports"][0].endswith(":8000")
            continue
        assert env["CANALIZA_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["CANALIZA_DATABASE_URL"]
        assert env["CANALIZA_BUS"] == "nats" and env["CANALIZA_NATS_URL"] == "nats://nats:4222"
        assert env["CANALIZA_SERVICE_CLIENT_ID"] and env["CANALIZA_SERVICE_CLIENT_SECRET"]
        assert env["CANALIZA_ISSUER"], name
        for other in SERVICE_NAMES:
            assert env[f"CANALIZA_{other.upper()}_URL"].startswith("http://"), (name, other)
        if name != "auth" and name != "migrate":
            assert env["CANALIZA_JWKS_URL"] == "http://auth:8000/auth/jwks"
        if name != "migrate":
            assert env["CANALIZA_AUTO_MIGRATE"] == "false"  # the migrate job runs them once
    # Every URL a service is given names a container of the file (and its port).
    hosts = set(compose["services"])
    for svc in apps.values():
        for key, value in svc["environment"].items():
            if key.endswith("_URL") and value.startswith("http://") and "PUBLIC" not in key:
                for url in value.split(","):
                    host, _, port = url.removeprefix("http://").split("/")[0].partition(":")
                    assert host in hosts, (key, url)
                    assert port == "8000"


def test_the_key_encryption_key_comes_from_outside_for_the_services_keeping_keys(compose):
    """Auth (signing keys in PostgreSQL) and audit (checkpoint key) get the KEK from the
    operator's environment, required; no other service receives it."""
    for name, svc in _apps(compose).items():
        kek = svc["environment"].get("CANALIZA_KEY_ENCRYPTION_KEY")
        if name in ("auth", "audit"):
            assert kek and kek.startswith("${CANALIZA_KEY_ENCRYPTION_KEY:?"), name
        else:
            assert kek is None, name


def test_start_order_and_health_checks(compose):
    services = compose["services"]
    for name, svc in _apps(compose).items():
        if name == "migrate":
            assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
            continue
        assert "/readyz" in " ".join(svc["healthcheck"]["test"]), name
        deps = svc["depends_on"]
        for dep, cond in deps.items():
            assert dep in services
            assert cond["condition"] in ("service_healthy", "service_completed_successfully")
        if name != "gateway":
            assert deps["migrate"]["condition"] == "service_completed_successfully"
            assert deps["nats"]["condition"] == "service_healthy"
    gateway_deps = set(services["gateway"]["depends_on"])
    assert gateway_deps == {n for n in _apps(compose) if n not in ("gateway", "migrate")}
    assert services["postgres"]["healthcheck"] and services["nats"]["healthcheck"]


def test_the_image_carries_the_web_ui_packages():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages[0].startswith("node:") and stages[-1].startswith("python:3.11")
    assert "npm ci" in dockerfile and "frontend/package-lock.json" in dockerfile
    assert "COPY --from=ui /src/frontend/node_modules ./frontend/node_modules" in dockerfile
    # The host's node_modules never enter the build context (the image installs its own).
    assert "**/node_modules" in (ROOT / ".dockerignore").read_text().split()
