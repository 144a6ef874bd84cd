"""Migrations with discipline: one head, and an empty database upgrades to the tables we use."""

from __future__ import annotations

import os

import pytest
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


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_0005_gives_existing_workflows_version_1(backend, tmp_path):
    """A database with workflows and runs from before versions: each workflow's definition
    becomes its version 1, and its runs record version 1."""
    from alembic import command
    from sqlalchemy import text

    from loopllama.store.migrate import alembic_config
    from tests.conftest import PG_ADMIN_URL, _postgres_available

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        drop = None
    else:
        if not _postgres_available():
            if os.environ.get("CI"):  # nothing is skipped on CI
                pytest.fail("PostgreSQL is not reachable (required on CI)")
            pytest.skip("PostgreSQL is not reachable")
        import uuid

        import psycopg

        name = f"loopllama_mig_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        drop = name
    try:
        command.upgrade(alembic_config(url), "0003")
        engine = create_engine(sync_url(url))
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts VALUES ('a1', 'acme', '2026-11-01')"))
            conn.execute(
                text(
                    "INSERT INTO workflows (id, account_id, name, status, model, crew, tools, "
                    "created_at, updated_at) VALUES ('w1', 'a1', 'old', 'active', 'fake/x', "
                    """'[{"role": "r", "systemPrompt": "p"}]', '[]', '2026-11-01', '2026-11-02')"""
                )
            )
            conn.execute(
                text(
                    "INSERT INTO runs (id, account_id, workflow_id, status, input, total_steps, "
                    "tokens_in, tokens_out, created_at, snapshot, attempt) VALUES ('r1', 'a1', "
                    """'w1', 'completed', 'x', 1, 0, 0, '2026-11-02', '{"crew": []}', 1)"""
                )
            )
        upgrade(url)
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version, locked FROM workflows")).one()
            row = conn.execute(text("SELECT workflow_id, version FROM workflow_versions")).one()
            run = conn.execute(text("SELECT workflow_version FROM runs")).scalar()
        engine.dispose()
        assert (version[0], bool(version[1])) == (1, False)
        assert tuple(row) == ("w1", 1) and run == 1
    finally:
        if drop:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
