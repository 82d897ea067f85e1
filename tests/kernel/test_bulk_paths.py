"""The kernel's bulk write paths store exactly what the ordinary ones would."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from services import db
from services.db import COPY_MIN_ROWS, bulk_insert
from services.events import Event, Outbox, outbox_table
from services.ids import new_id, new_ids


def _table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "sample",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tags", sa.JSON),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.String(40)),
    )


@pytest.mark.parametrize("per_statement", [db.SQLITE_ROWS_PER_STATEMENT, 7])
def test_sqlite_bulk_insert_stores_what_an_insert_stores(monkeypatch, per_statement) -> None:
    """Whatever the rows per multi-row statement (7: full statements and a shorter last)."""
    monkeypatch.setattr(db, "SQLITE_ROWS_PER_STATEMENT", per_statement)
    metadata = sa.MetaData()
    table = _table(metadata)
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"id": i, "tags": None if i % 3 else ["niñez", i], "at": at, "note": None}
        for i in range(COPY_MIN_ROWS + 3)
    ]
    raw = sa.text(
        "SELECT tags, typeof(tags), at, note FROM sample WHERE id / 10000 = :k ORDER BY id"
    )
    with Session(engine) as session:
        bulk_insert(session, table, rows)
        session.execute(table.insert(), [{**r, "id": 10_000 + i} for i, r in enumerate(rows)])
        bulk = session.execute(raw, {"k": 0}).all()
        plain = session.execute(raw, {"k": 1}).all()
        assert len(bulk) == len(rows)
        assert bulk == plain  # a None in a JSON column is JSON 'null', as SQLAlchemy writes it
        assert ("null", "text", plain[1][2], None) == tuple(bulk[1])
        assert session.execute(sa.select(table.c.tags).where(table.c.id == 3)).scalar() == [
            "niñez",
            3,
        ]


def _outbox() -> tuple[Outbox, sa.Engine]:
    metadata = sa.MetaData()
    outbox = Outbox(outbox_table(metadata))
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    return outbox, engine


def test_the_outbox_stores_the_event_as_the_bus_carries_it() -> None:
    outbox, engine = _outbox()
    event = Event(
        type="referral.history.imported",
        aggregate_type="referral_history",
        aggregate_id="r-1",
        payload={"at": datetime(2024, 5, 1, tzinfo=UTC), "pair": (1, 2), "ages": {5: "0-12"}},
    )
    with Session(engine) as session:
        outbox.add(session, event)
        body = session.execute(sa.select(outbox.table.c.body)).scalar_one()
    assert body == json.loads(event.to_json())
    assert body["payload"] == {"at": "2024-05-01T00:00:00Z", "pair": [1, 2], "ages": {"5": "0-12"}}


def test_an_event_with_a_json_payload_is_stored_as_any_other() -> None:
    """A contract's payload is JSON data already: stored as it is, the same body (and the
    same keys in the same order) as the event walked whole."""
    outbox, engine = _outbox()
    event = Event(
        type="referral.history.imported",
        aggregate_type="referral_history",
        aggregate_id="r-1",
        institution_id="i-1",
        payload={"referrals": [{"referral_id": "r-1", "steps": {"sent": "2024-05-01"}}]},
    )
    with Session(engine) as session:
        outbox.add(session, event, json_payload=True)
        body = session.execute(sa.select(outbox.table.c.body)).scalar_one()
    expected = json.loads(event.to_json())
    assert body == expected
    assert json.dumps(body) == json.dumps(expected)


def test_ids_drawn_in_batches_are_distinct_time_ordered_uuid7() -> None:
    before = time.time_ns() // 1_000_000
    drawn = list(itertools.islice(new_ids(batch=8), 20))  # past one batch
    single = [new_id() for _ in range(20)]
    after = time.time_ns() // 1_000_000
    assert len(set(drawn + single)) == 40
    parsed = [uuid.UUID(i) for i in drawn + single]
    assert {u.version for u in parsed} == {7}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert [str(u) for u in parsed] == drawn + single  # canonical text
    # the first 48 bits: the millisecond each was made
    assert all(before <= u.int >> 80 <= after for u in parsed)
    # the other 74 bits are random: two ids of the same millisecond differ there
    assert len({u.int & ((1 << 80) - 1) for u in parsed}) == 40


def test_ids_made_later_sort_after_earlier_ones() -> None:
    """What keeps a new row's key at the right-hand edge of its indexes (ADR 0034)."""
    first = new_id()
    time.sleep(0.002)
    batch = list(itertools.islice(new_ids(batch=4), 6))
    time.sleep(0.002)
    last = new_id()
    assert all(first < i < last for i in batch)


JSON_VALUES: list[Any] = [
    [],
    ["niñez", "indígena"],
    {"given": True, "given_by": None, "línea": "a\nb\u2028"},
    {1: "a key that is not text"},
    2**70,  # past orjson's 64 bits: json.dumps takes it
    [1.5, 1e300, -0.0],
]


def test_json_columns_are_written_compact_and_read_back_as_json_would(tmp_path) -> None:
    """Every service's engine writes JSON columns with orjson (both the ORM insert and the
    bulk path) and reads back what ``json.loads(json.dumps(v))`` gives."""
    metadata = sa.MetaData()
    table = _table(metadata)
    database = db.ServiceDatabase("jsoncolumns", metadata)
    database.configure(f"sqlite:///{tmp_path / 'json.db'}")
    metadata.create_all(database.engine)
    rows = [
        {"id": i, "tags": JSON_VALUES[i % len(JSON_VALUES)], "at": None, "note": None}
        for i in range(COPY_MIN_ROWS)
    ]
    with database.unit_of_work() as session:
        bulk_insert(session, table, rows)
        session.execute(table.insert(), {"id": 10_000, "tags": JSON_VALUES[2]})
    with database.unit_of_work(write=False) as session:
        stored = {r.id: r.tags for r in session.execute(sa.select(table.c.id, table.c.tags))}
        text = session.execute(sa.text("SELECT tags FROM sample WHERE id = 1")).scalar()
    database.dispose()
    assert text == '["niñez","indígena"]'
    assert stored[10_000] == stored[2]
    for row in rows:
        assert stored[row["id"]] == json.loads(json.dumps(row["tags"]))
    assert db.json_value("NaN") != db.json_value("NaN")  # json.loads reads what orjson refuses
