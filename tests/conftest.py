"""Shared fixtures: an isolated environment, a database per test on SQLite and PostgreSQL, the
app with its engine running and a scripted fake provider, API keys, and HTTP clients.

Tests that take the `backend` fixture (through `settings`, `app`, `client`...) run twice: on
SQLite and on PostgreSQL. PostgreSQL is skipped only outside CI when no server answers; on CI
(CI=true) a missing server is an error, so nothing is skipped there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text

from loopllama.api.app import create_app
from loopllama.providers.fake import FakeProvider
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import DatabaseSettings, LimitSettings, ModelSettings, Settings
from loopllama.store.db import Database
from loopllama.store.keys import create_key
from loopllama.store.migrate import upgrade
from loopllama.store.tables import metadata
from tests.fakes.fixtures import provider_server  # noqa: F401 (a fixture)
from tests.helpers import LiveServer
from tests.log_secrets import SecretWatch

PG_ADMIN_URL = os.environ.get("LOOPLLAMA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
FAKE_MODEL = "fake/test"
# Tests poll runs every 10 ms and fire bursts: the rate limits (tested in tests/limits) would
# turn them into 429s, so elsewhere they are out of reach.
UNLIMITED = LimitSettings(rate_limit="1000000/second", run_rate_limit="1000000/second")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray API keys or settings from the developer's shell; a scratch working directory."""
    for name in list(os.environ):
        if name.startswith(("LOOPLLAMA_", "ANTHROPIC_", "OPENAI_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_any_log_line() -> Iterator[SecretWatch]:
    """Fails the session (an error at its last test) if any log line held a secret."""
    watch = SecretWatch()
    level = watch.install()
    yield watch
    watch.remove(level)
    assert not watch.leaks, f"secrets in {len(watch.leaks)} log line(s): {watch.leaks[:5]}"


# -- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _postgres_available() -> bool:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (required on CI)")
        pytest.skip("PostgreSQL is not reachable (set LOOPLLAMA_TEST_PG)")
    name = f"loopllama_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def database_url(
    backend: str, tmp_path: Path, sqlite_template: Path, request: pytest.FixtureRequest
) -> str:
    if backend == "sqlite":
        path = tmp_path / "loopllama.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    db = Database(url, pool_size=1)
    async with db.write() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    await db.dispose()
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url, pool_size=5),
        models=ModelSettings(retry_base_delay=0.01, retry_max_delay=0.05, timeout=5.0),
        limits=UNLIMITED,
    )


# -- the app ---------------------------------------------------------------------------------


@pytest.fixture
def fake_provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def app(settings: Settings, fake_provider: FakeProvider) -> AsyncIterator:
    """The app with its lifespan running: engine on, `fake/...` models served by the fake."""
    registry = ProviderRegistry(settings)
    registry.register("fake", fake_provider)
    application = create_app(settings, providers=registry, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


# Keys need the database, not the app: a test that builds its own app must not get a second
# engine from the `app` fixture (on PostgreSQL every engine on the database takes any run).
@pytest.fixture
async def api_key(settings: Settings) -> str:
    return await _new_key(settings, "acme")


@pytest.fixture
async def other_api_key(settings: Settings) -> str:
    return await _new_key(settings, "globex")


async def _new_key(settings: Settings, account: str) -> str:
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            _, key = await create_key(conn, account, None)
    finally:
        await db.dispose()
    return key


@pytest.fixture
async def client(app, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in process, authenticated as account "acme"."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as http:
        yield http


@pytest.fixture
async def anonymous(app) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app with no credentials."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


# -- a real server process -------------------------------------------------------------------


@pytest.fixture
def live_server(tmp_path: Path, provider_server) -> Iterator[LiveServer]:  # noqa: F811
    """`loopllama serve` in a subprocess on SQLite, its Anthropic provider the fake server."""
    server = LiveServer(tmp_path, provider_server)
    server.start()
    try:
        yield server
    finally:
        server.stop()
