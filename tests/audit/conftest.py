"""Audit test fixtures: a migrated database per test and the app on an in-process bus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audit.database import db
from audit.main import service
from services.app import create_app
from services.bus import InProcessBus
from services.settings import get_settings
from tests.conftest import database_copy, migrate_template


@pytest.fixture(scope="session")
def audit_template(tmp_path_factory) -> str:
    return migrate_template(tmp_path_factory, "audit", db.metadata)


@pytest.fixture
def audit_db(tmp_path, audit_template) -> Iterator[str]:
    with database_copy(audit_template, tmp_path, db) as url:
        yield url


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def audit_app(test_verifier, audit_db, bus):
    get_settings().auto_migrate = False
    return create_app([service()], bus=bus)


# The referral event that leaves a referral in each status (``referral.referral.<action>``),
# for fixtures that stand in for the referral service.
EVENT_OF_STATUS = {
    "draft": "created",
    "sent": "send",
    "accepted": "accept",
    "declined": "decline",
    "in_transit": "in_transit",
    "admitted": "admit",
    "discharged": "discharge",
    "cancelled": "cancel",
    "expired": "expired",
}
