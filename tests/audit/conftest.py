"""Audit test fixtures: a migrated database per test and the app on an in-process bus."""

from __future__ import annotations

import shutil

import pytest

from audit.database import db
from audit.main import service
from services.app import create_app
from services.bus import InProcessBus
from services.db import alembic_config
from services.settings import get_settings


@pytest.fixture(scope="session")
def audit_template(tmp_path_factory) -> str:
    from alembic import command

    path = tmp_path_factory.mktemp("audit-template") / "audit.db"
    command.upgrade(alembic_config("audit", f"sqlite:///{path}", db.metadata), "head")
    return str(path)


@pytest.fixture
def audit_db(tmp_path, audit_template) -> str:
    target = tmp_path / "audit.db"
    shutil.copy(audit_template, target)
    url = f"sqlite:///{target}"
    db.configure(url)
    yield url
    db.dispose()


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def audit_app(test_verifier, audit_db, bus):
    get_settings().auto_migrate = False
    return create_app([service()], bus=bus)
