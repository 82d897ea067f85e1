"""SQLite writers of one process queue at a write gate, and always give it back."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData, text

from services.db import ServiceDatabase, write_gate


@pytest.fixture
def database(tmp_path) -> Iterator[ServiceDatabase]:
    db = ServiceDatabase("gate", MetaData())
    db.configure(f"sqlite:///{tmp_path / 'gate.db'}")
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    yield db
    db.dispose()


def _count(db: ServiceDatabase) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT n FROM counter")).scalar_one())


def test_a_write_holds_the_gate_until_it_ends(database):
    gate = write_gate(database.engine)
    assert gate is not None and not gate.held
    with database.unit_of_work() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        assert gate.held
    assert not gate.held and _count(database) == 1
    with database.unit_of_work(write=False) as session:  # a read never takes it
        session.execute(text("SELECT n FROM counter"))
        assert not gate.held


def test_the_gate_is_given_back_when_the_transaction_fails(database):
    gate = write_gate(database.engine)
    assert gate is not None
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        raise RuntimeError("the handler failed")
    assert not gate.held
    with pytest.raises(Exception, match="no such table"), database.unit_of_work() as session:
        session.execute(text("UPDATE nowhere SET n = 1"))
    assert not gate.held
    assert _count(database) == 0  # both rolled back
    with database.unit_of_work() as session:  # and the next writer gets in
        session.execute(text("UPDATE counter SET n = n + 1"))
    assert _count(database) == 1


def test_concurrent_read_modify_writes_lose_nothing(database):
    def bump(times: int) -> None:
        for _ in range(times):
            with database.unit_of_work() as session:
                n = session.execute(text("SELECT n FROM counter")).scalar_one()
                session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump, args=(25,)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _count(database) == 12 * 25
    gate = write_gate(database.engine)
    assert gate is not None and not gate.held


def test_postgres_engines_have_no_gate():
    db = ServiceDatabase("pg", MetaData())
    db.configure("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        assert write_gate(db.engine) is None
    finally:
        db.dispose()
