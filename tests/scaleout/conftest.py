"""Fixtures of the scale-out tests: a PostgreSQL database per test module, and a cluster of
`loopllama` processes per test (stopped, and its logs printed, at the end)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.scaleout.support import Cluster, scratch_database


@pytest.fixture(scope="module")
def scaleout_db() -> Iterator[str]:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=2).close()
    except psycopg.OperationalError:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (required on CI)")
        pytest.skip("PostgreSQL is not reachable (set LOOPLLAMA_TEST_PG)")
    with scratch_database(PG_ADMIN_URL) as url:
        yield url


@pytest.fixture
def cluster(tmp_path: Path, scaleout_db: str) -> Iterator[Cluster]:
    topology = Cluster(tmp_path, scaleout_db)
    try:
        yield topology
    finally:
        topology.close()
        print(topology.logs())  # shown by pytest when the test failed
