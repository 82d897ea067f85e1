"""What ``canaliza cluster up`` would start (nothing is started here)."""

from __future__ import annotations

import pytest

from services import cluster as cluster_module
from services.cluster import Cluster


def _plan(monkeypatch: pytest.MonkeyPatch, *, frontend: bool) -> dict[str, cluster_module.Member]:
    packages = {"auth", "capacity", "referral", "audit"} | ({"frontend"} if frontend else set())
    monkeypatch.setattr(cluster_module, "_has_service", lambda name: name in packages)
    c = Cluster(gateway_port=18000, capacity_replicas=2)
    c.plan()
    return c.members


def test_the_frontend_joins_the_topology_when_its_package_exists(monkeypatch):
    members = _plan(monkeypatch, frontend=True)
    assert list(members) == [
        "auth", "capacity-1", "capacity-2", "referral", "audit", "frontend", "gateway",
    ]  # fmt: skip
    ui = members["frontend"]
    assert ui.args[-4:] == ["serve", "frontend", "--port", str(ui.port)]
    gateway = members["gateway"].env
    assert gateway["CANALIZA_FRONTEND_URL"] == ui.url
    # auth registers the web client with the secret the frontend signs in with.
    secret = members["auth"].env["CANALIZA_FRONTEND_CLIENT_SECRET"]
    assert secret and ui.env["CANALIZA_FRONTEND_CLIENT_SECRET"] == secret
    # The UI is reached at the public URL, and reaches the services as the others do.
    assert ui.env["CANALIZA_PUBLIC_URL"] == "http://127.0.0.1:18000"
    assert ui.env["CANALIZA_CAPACITY_URL"] == "http://127.0.0.1:18000"
    assert ui.env["CANALIZA_AUTH_URL"] == members["auth"].url


def test_without_the_frontend_package_the_gateway_has_no_ui(monkeypatch):
    members = _plan(monkeypatch, frontend=False)
    assert "frontend" not in members
    assert "CANALIZA_FRONTEND_URL" not in members["gateway"].env
    replicas = members["gateway"].env["CANALIZA_CAPACITY_URL"].split(",")
    assert replicas == [members["capacity-1"].url, members["capacity-2"].url]


def test_the_key_encryption_key_reaches_auth_and_audit_only(monkeypatch):
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY", "a-key-from-the-secret-store")
    monkeypatch.setenv("CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS", "a-former-key")
    members = _plan(monkeypatch, frontend=True)
    for name, member in members.items():
        got = {k: v for k, v in member.env.items() if k.startswith("CANALIZA_KEY_ENCRYPTION")}
        if name in ("auth", "audit"):
            assert got == {
                "CANALIZA_KEY_ENCRYPTION_KEY": "a-key-from-the-secret-store",
                "CANALIZA_KEY_ENCRYPTION_KEY_PREVIOUS": "a-former-key",
            }, name
        else:
            assert got == {}, name
