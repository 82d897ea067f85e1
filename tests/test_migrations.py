"""Models and migrations agree (``alembic check``) for every service, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command

from canaliza.composition import available_packages, load_spec
from services.db import alembic_config

SERVICES = [name for name in available_packages() if (spec := load_spec(name)).database is not None]


def test_every_service_with_a_database_is_checked():
    assert set(SERVICES) == {"auth", "capacity", "referral", "audit", "frontend"}


@pytest.mark.parametrize("service", SERVICES)
def test_sqlite_migrations_match_models(service, tmp_path):
    spec = load_spec(service)
    assert spec.database is not None
    cfg = alembic_config(service, f"sqlite:///{tmp_path}/{service}.db", spec.database.metadata)
    command.upgrade(cfg, "head")
    command.check(cfg)  # raises if autogenerate would add anything
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")


@pytest.mark.postgres
@pytest.mark.parametrize("service", SERVICES)
def test_postgres_migrations_match_models(service, pg_url):
    spec = load_spec(service)
    assert spec.database is not None
    cfg = alembic_config(service, pg_url, spec.database.metadata)
    command.upgrade(cfg, "head")
    command.check(cfg)
