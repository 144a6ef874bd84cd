"""Alembic environment: runs migrations with a synchronous engine on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, event, pool

from loopllama.store.db import configure_sqlite_connection
from loopllama.store.tables import metadata

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda conn, _rec: configure_sqlite_connection(conn))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Several processes may start at once: one migrates, the others wait for it.
            connection.exec_driver_sql("SELECT pg_advisory_lock(72177)")
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=engine.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_unlock(72177)")
            connection.commit()
    engine.dispose()


run_migrations()
