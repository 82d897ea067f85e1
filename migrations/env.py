"""Alembic environment shared by every service; each service has its own version location.

Run through :meth:`services.db.ServiceDatabase.migrate` or ``canaliza migrate``; the
service's metadata and (on PostgreSQL) its schema arrive in ``config.attributes``.
"""

from __future__ import annotations

import importlib

from alembic import context
from sqlalchemy import engine_from_config, pool, text

config = context.config
service: str = config.attributes.get("service") or config.get_main_option("service") or ""
schema: str | None = config.attributes.get("schema")
target_metadata = config.attributes.get("target_metadata")
if target_metadata is None:
    target_metadata = importlib.import_module(f"{service}.models").metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave Alembic's own version table out of comparisons.

    On PostgreSQL the version table lives in the service's schema, which is also the
    default schema (``search_path``), so autogenerate would otherwise report it as extra.
    """
    return not (type_ == "table" and name == "alembic_version")


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    connect_args = {} if url.startswith("sqlite") else {"options": f"-csearch_path={schema}"}
    engine = engine_from_config(
        {"sqlalchemy.url": url},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        connect_args=connect_args,
    )
    with engine.connect() as connection:
        if schema:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
            version_table_schema=schema,
            include_schemas=False,
            include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
