"""Database engines, sessions and migrations, one database per service.

Embedded mode: each service has its own SQLite file (WAL), ``0600`` like its WAL and
shared-memory files (``services.at_rest``). Production: one PostgreSQL
database where each service owns a schema (``search_path`` is set per connection), so
no service can read another's tables by accident.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import registry
from sqlmodel import Session, create_engine

from services.at_rest import protect_sqlite_file
from services.settings import ROOT, get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = ROOT / "migrations"


def json_text(value: Any) -> str:
    """How every JSON column is written: orjson, several times faster than ``json.dumps``
    (a history batch writes ~10,000 JSON values and a 1 MB event). Compact (no spaces);
    nothing compares a column's text. Integers past 64 bits, which orjson refuses, go
    through ``json.dumps``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def json_value(text: str | bytes) -> Any:
    """How every JSON column is read: orjson, with ``json.loads`` for what it refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def empty_list() -> list[Any]:
    """``default_factory`` of a table model's list column, for ``list`` itself. SQLModel
    constructs a table model through pydantic's ``FieldInfo.get_default``, which inspects
    the factory's signature on every call: ~120 µs for a builtin (its text signature is
    parsed each time), ~6 µs for a Python function (tests/test_architecture.py checks)."""
    return []


def empty_dict() -> dict[str, Any]:
    """``default_factory`` of a table model's object column (see :func:`empty_list`)."""
    return {}


def make_registry() -> registry:
    """A mapper registry with its own metadata, for one service's SQLModel base class."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: in memory, or not SQLite)."""
    if not is_sqlite(url):
        return None
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def prepare_sqlite_file(url: str) -> None:
    """Before SQLite opens it: the file exists, private (its WAL/SHM inherit its mode)."""
    path = sqlite_file(url)
    if path is not None:  # a fresh machine has no var/ yet
        protect_sqlite_file(path)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how each transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that read first and
        # then writes can fail with SQLITE_BUSY instead of waiting its turn.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class ServiceDatabase:
    """The database of one service: its metadata, engine and sessions.

    The engine is created lazily from the settings, so tests and the launcher can point
    a service at another database with :meth:`configure` before first use.
    """

    def __init__(self, service: str, metadata: MetaData) -> None:
        self.service = service
        self.metadata = metadata
        self._engine: Engine | None = None
        self._url: str | None = None
        self._lock = threading.Lock()
        self.after_commit_hooks: list[Callable[[], None]] = []

    @property
    def url(self) -> str:
        return self._url or get_settings().database_url_for(self.service)

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema this service owns (None on SQLite)."""
        return None if is_sqlite(self.url) else self.service

    def configure(self, url: str | None = None, **engine_kw: Any) -> Engine:
        """(Re)create the engine for ``url`` (default: from settings)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._url = url
            self._engine = self._create_engine(self.url, **engine_kw)
            return self._engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine(self.url)
        return self._engine

    def _create_engine(self, url: str, **kw: Any) -> Engine:
        kw.setdefault("json_serializer", json_text)
        kw.setdefault("json_deserializer", json_value)
        if is_sqlite(url):
            prepare_sqlite_file(url)
            kw.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
            kw.setdefault("pool_size", 20)
            kw.setdefault("max_overflow", 40)
            engine = create_engine(url, **kw)
            _configure_sqlite(engine)
            return engine
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 20)
        kw.setdefault("pool_pre_ping", True)
        kw.setdefault("pool_timeout", 10)
        connect_args = kw.setdefault("connect_args", {})
        connect_args.setdefault("options", f"-csearch_path={self.service}")
        connect_args.setdefault("connect_timeout", 5)
        return create_engine(url, **kw)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def new_session(self, *, write: bool = False) -> Session:
        """A session; ``write=True`` takes SQLite's write lock when the transaction begins."""
        session = Session(self.engine, expire_on_commit=False)
        if write and is_sqlite(self.url):
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        if self.after_commit_hooks:
            hooks = self.after_commit_hooks

            @event.listens_for(session, "after_commit")
            def _after_commit(_: Session) -> None:
                for hook in hooks:
                    hook()

        return session

    @contextlib.contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Session]:
        """The one way to open a transaction: commit on success, roll back on any error.

        ``write=True`` takes SQLite's write lock when the transaction begins. Open it inside
        the handler's own thread (a sync handler, or ``run_in_threadpool``), never from a
        dependency: taken in one thread-pool call and released in another, the lock can
        starve the pool. ``write=False`` is a read: it never commits.
        """
        session = self.new_session(write=write)
        try:
            yield session
            if write:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            # A read ends by closing: its connection's transaction is rolled back, and the
            # objects it loaded stay readable (detached, not expired as a rollback would).
            session.close()

    def read_only(self) -> Iterator[Session]:
        """FastAPI dependency of GET/HEAD handlers: a read-only session (never commits).

        Use as ``Annotated[Session, Depends(db.read_only, scope="function")]``; a write
        handler opens its own :meth:`unit_of_work` instead (``tests/test_architecture.py``
        fails when a non-GET route depends on this).
        """
        with self.unit_of_work(write=False) as session:
            yield session

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self, revision: str = "head") -> None:
        """Run this service's Alembic migrations up to ``revision``."""
        prepare_sqlite_file(self.url)
        command.upgrade(alembic_config(self.service, self.url, self.metadata), revision)


def alembic_config(service: str, url: str, metadata: MetaData | None = None) -> Config:
    """The Alembic configuration of one service (its own version location)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions" / service))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    cfg.attributes["schema"] = None if is_sqlite(url) else service
    if metadata is not None:
        cfg.attributes["target_metadata"] = metadata
    return cfg


# Below this many rows a bulk insert is SQLAlchemy's own executemany whatever the database.
COPY_MIN_ROWS = 200
# Rows per multi-row INSERT on SQLite (fewer when the columns would pass its variable limit).
SQLITE_ROWS_PER_STATEMENT = 2_000


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the session's transaction.

    Each value goes through its column type's bind processing first, so encrypted and JSON
    columns store exactly what an ``INSERT`` would; then PostgreSQL takes the rows in one
    ``COPY … FROM STDIN`` (psycopg) and SQLite in multi-row ``INSERT … VALUES`` statements
    of up to ``SQLITE_ROWS_PER_STATEMENT`` rows (no per-row parameter compilation: most of
    SQLAlchemy's cost on a bulk path; no per-row statement step: see below). For a few
    rows, or when a column left out of the rows has a Python-side default the driver would
    not apply: SQLAlchemy's executemany ``INSERT``."""
    if not rows:
        return
    conn = session.connection()
    keys = list(rows[0])
    columns = [table.c[k] for k in keys]
    omitted_default = any(
        c.default is not None or c.onupdate is not None for c in table.c if c.key not in keys
    )
    dialect = conn.dialect
    if (
        dialect.name not in ("postgresql", "sqlite")
        or len(rows) < COPY_MIN_ROWS
        or omitted_default
        or any(list(r) != keys for r in rows)
    ):
        session.execute(table.insert(), rows)
        return
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in columns)
    target = quote(table.name)
    # SQLAlchemy hands None to SQLite's processors too (a JSON column stores 'null'); COPY
    # takes None as NULL. Processed column by column (most columns have no processor).
    values = _bound_values(rows, columns, dialect, process_none=dialect.name == "sqlite")
    driver = conn.connection.driver_connection
    assert driver is not None
    if dialect.name == "sqlite":
        # Thousands of rows per statement, not one statement step per row: the driver lets
        # go of the GIL around every step, and taking it back behind a busy thread (the
        # service preparing the next batch) costs up to a switch interval each time.
        limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(SQLITE_ROWS_PER_STATEMENT, limit // len(keys)))
        one = f"({', '.join('?' * len(keys))})"
        for start in range(0, len(values), per):
            chunk = values[start : start + per]
            # the names are the table's own, quoted, and every value a bound parameter
            conn.exec_driver_sql(
                f"INSERT INTO {target} ({names}) VALUES {', '.join([one] * len(chunk))}",  # noqa: S608
                tuple(value for row in chunk for value in row),
            )
        return
    with driver.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)


def _bound_values(
    rows: list[dict[str, Any]], columns: list[Any], dialect: Any, *, process_none: bool
) -> list[tuple[Any, ...]]:
    """Each row's values in column order, through its column type's bind processor."""
    by_column: list[Any] = []
    for column in columns:
        key = column.key
        values = [row[key] for row in rows]
        proc = column.type._cached_bind_processor(dialect)
        if proc is not None:
            values = [
                proc(value) if value is not None or process_none else None for value in values
            ]
        by_column.append(values)
    return list(zip(*by_column, strict=True))
