"""Shared fixtures of the resilience suite: the one-process demo app and the result files.

Every part of the suite (input, attacks, faults, load) writes its figures as JSON into
``var/resilience/`` (``CANALIZA_RESILIENCE_DIR`` overrides it); ``bench/resilience_summary.py``
reads whichever files exist and writes the summary table.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canaliza.composition import available_packages, build_app, load_spec
from canaliza.demo import DEMO_CLI_CLIENT_ID, DEMO_USERS
from services.settings import ROOT, get_settings


def results_dir() -> Path:
    """Where the suite's figures go (the repository's ``var/resilience`` by default)."""
    path = Path(os.environ.get("CANALIZA_RESILIENCE_DIR") or ROOT / "var" / "resilience")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write one part's figures to ``<results_dir>/<name>.json``."""
    path = results_dir() / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def _configure_databases() -> None:
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.configure()  # this test's own SQLite files


def _dispose_databases() -> None:
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.dispose()


@pytest.fixture
def demo_app(monkeypatch) -> Iterator[Any]:
    """The all-services app on this test's SQLite files, demo mode, demo data loaded."""
    from canaliza.seed import load_demo_into_app

    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    _configure_databases()
    app = build_app("all")
    report = asyncio.run(load_demo_into_app(app))
    assert not report.failures, report.failures[:5]
    yield app
    _dispose_databases()


def password_grant_form(username: str) -> dict[str, str]:
    """The demo password grant's form for ``username``."""
    return {
        "grant_type": "password",
        "username": username,
        "password": get_settings().demo_password,
        "client_id": DEMO_CLI_CLIENT_ID,
    }


DEMO_USERNAMES = tuple(DEMO_USERS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under ``tests/resilience/`` carries the ``resilience`` mark."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.resilience)
