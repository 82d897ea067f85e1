"""``canaliza serve --port N``: the service names the port it listens on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from canaliza import launcher
from services.settings import get_settings


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """uvicorn.run replaced by a recorder; the env variables the launcher sets restored."""
    for name in ("CANALIZA_PORT", "CANALIZA_HOST", "CANALIZA_SERVE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name in ("CANALIZA_PUBLIC_URL", "CANALIZA_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    seen: dict[str, Any] = {}

    def run(app: str, **kw: Any) -> None:
        settings = get_settings()  # what the app factory would read
        seen.update(kw, app=app, base_url=settings.base_url(), issuer=settings.token_issuer())

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", run)
    yield seen
    get_settings.cache_clear()


def test_serve_port_is_the_base_url_and_issuer(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(launcher.cli, ["serve", "capacity", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert captured["port"] == 8123
    assert captured["base_url"] == "http://127.0.0.1:8123"
    assert captured["issuer"] == "http://127.0.0.1:8123"


def test_gateway_port_is_its_base_url(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(launcher.cli, ["gateway", "--port", "8124", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert (captured["host"], captured["port"]) == ("0.0.0.0", 8124)
    assert captured["base_url"] == "http://0.0.0.0:8124"


def test_a_public_url_wins_over_the_port(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANALIZA_PUBLIC_URL", "https://canaliza.example.mx/")
    result = CliRunner().invoke(launcher.cli, ["serve", "auth", "--port", "8125"])
    assert result.exit_code == 0, result.output
    assert captured["port"] == 8125
    assert captured["base_url"] == "https://canaliza.example.mx"
    assert captured["issuer"] == "https://canaliza.example.mx"


def test_without_a_port_the_setting_is_used(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANALIZA_PORT", "8126")
    result = CliRunner().invoke(launcher.cli, ["serve", "referral"])
    assert result.exit_code == 0, result.output
    assert captured["port"] == 8126 and captured["base_url"] == "http://127.0.0.1:8126"
