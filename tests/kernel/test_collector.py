"""A process that serves or bulk-loads runs with the collector thresholds of ADR 0033
(update 1): a batch's objects die young instead of setting off full collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from canaliza import launcher
from canaliza.seed import cli as seed_cli
from services.app import COLLECTOR_THRESHOLDS, freeze_startup_heap


@pytest.fixture
def default_collector() -> Iterator[None]:
    """CPython's thresholds before the test, this process's own after it."""
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_thresholds_raise_the_young_generation() -> None:
    young, middle, old = COLLECTOR_THRESHOLDS
    assert young >= 10_000 and middle >= 10 and old >= 10


def test_the_served_app_tunes_the_collector(
    default_collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(launcher, "configure_logging", lambda target: None)
    monkeypatch.setattr(launcher, "build_app", lambda target, **kw: built.append((target, kw)))
    monkeypatch.delenv("CANALIZA_SERVE", raising=False)
    launcher.app_all()
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    assert built == [("all", {"extra_startup": [freeze_startup_heap]})]


def test_the_seed_command_tunes_the_collector(default_collector: None, tmp_path: Path) -> None:
    cli = typer.Typer()
    cli.command("seed")(seed_cli.seed)
    cli.command("noop")(lambda: None)  # two commands: the name must be given, as in canaliza
    result = CliRunner().invoke(cli, ["seed", "--scale", "demo", "--export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
