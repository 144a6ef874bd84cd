"""Migrations with discipline: one head, and an empty database upgrades to the tables we use."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from loopllama.store.db import sync_url
from loopllama.store.migrate import heads, upgrade
from loopllama.store.tables import metadata


def test_there_is_exactly_one_head():
    assert len(heads()) == 1


async def test_upgrade_is_idempotent_and_matches_the_tables(database_url):
    upgrade(database_url)  # already at head (fixture): a second upgrade changes nothing
    engine = create_engine(sync_url(database_url))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_a_fresh_sqlite_file_upgrades_to_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        engine.dispose()
    assert version == heads()[0]
    assert journal == "wal"
