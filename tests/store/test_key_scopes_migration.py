"""Revision 0006: keys made before scopes existed become admin keys that keep working."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from loopllama.store.db import sync_url
from loopllama.store.keys import generate_key, hash_key
from loopllama.store.migrate import alembic_config, upgrade
from tests.conftest import PG_ADMIN_URL, _postgres_available
from tests.helpers import app_client


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not _postgres_available():
        if os.environ.get("CI"):  # nothing is skipped on CI
            pytest.fail("PostgreSQL is not reachable (required on CI)")
        pytest.skip("PostgreSQL is not reachable")
    name = f"loopllama_mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_existing_keys_become_admin_keys(empty_database):
    from loopllama.settings import DatabaseSettings, Settings

    command.upgrade(alembic_config(empty_database), "0003")
    key = generate_key()
    engine = create_engine(sync_url(empty_database))
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            conn.execute(
                text("INSERT INTO accounts (id, name, created_at) VALUES ('a1', 'old', :now)"),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, account_id, label, key_hash, hint, created_at) "
                    "VALUES ('k1', 'a1', NULL, :hash, 'll_live_x…', :now)"
                ),
                {"hash": hash_key(key), "now": now},
            )
        upgrade(empty_database)
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT scope, workflow_ids, expires_at FROM api_keys WHERE id = 'k1'")
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("admin", None, None)
    settings = Settings(database=DatabaseSettings(url=empty_database, pool_size=2))
    async with app_client(settings, key, run_engine=False) as client:
        assert (await client.get("/v1/workflows")).status_code == 200
        listed = (await client.get("/v1/keys")).json()["data"]
    assert [(k["id"], k["scope"], k["workflow_ids"]) for k in listed] == [("k1", "admin", None)]


def test_downgrade_removes_the_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'down.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "0003")
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(api_keys)")}
    finally:
        engine.dispose()
    assert "scope" not in columns and "last_used_at" not in columns
