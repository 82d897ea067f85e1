"""The trail is one chain on PostgreSQL too: concurrent appends (the bus consumer, visits
recorded through the API, checkpoints) take turns instead of failing on the same position."""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlmodel import col

from audit.database import db
from audit.main import checkpoint, consume
from audit.models import AuditEntry
from audit.service import verify
from services.events import Event

pytestmark = pytest.mark.slow

WRITERS = 6
EACH = 15


def _event(n: int) -> Event:
    return Event(
        type="referral.institution.created",
        aggregate_type="institution",
        aggregate_id=str(uuid4()),
        payload={"id": str(uuid4()), "name": f"Institución {n}", "type": "ngo", "state": "09"},
    )


def test_concurrent_appends_and_checkpoints_keep_one_unbroken_chain(pg_url):
    db.configure(pg_url)
    db.migrate()
    failures: list[BaseException] = []
    start = threading.Barrier(WRITERS + 1)

    def writer(w: int) -> None:
        start.wait()
        for i in range(EACH):
            try:
                consume(_event(w * EACH + i))
                if i % 5 == 0:
                    checkpoint()
            except BaseException as exc:  # an IntegrityError here is the bug
                failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    try:
        for t in threads:
            t.start()
        start.wait()
        for t in threads:
            t.join()
        assert failures == []
        with db.new_session() as session:
            positions = list(
                session.execute(select(col(AuditEntry.position)).order_by(col(AuditEntry.position)))
                .scalars()
                .all()
            )
            assert positions == list(range(1, WRITERS * EACH + 1))
            report = verify(session)
        assert report["ok"] is True, report["problems"][:3]
    finally:
        db.dispose()
