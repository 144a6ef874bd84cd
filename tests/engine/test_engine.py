"""The engine on its own: retry policy, fencing of stale writers, and wake-up coalescing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from loopllama.engine import transitions as t
from loopllama.engine.dispatcher import LocalDispatcher
from loopllama.engine.retry import backoff_delay, complete_with_retries
from loopllama.providers.base import (
    Message,
    ModelRequest,
    ProviderConnectionError,
    ProviderStatusError,
    ProviderTimeout,
)
from loopllama.providers.fake import FakeProvider, reply
from loopllama.settings import ModelSettings, Settings
from loopllama.store.db import Database
from loopllama.store.keys import create_key
from loopllama.store.runs import get_run_for_engine
from loopllama.store.tables import accounts
from loopllama.store.workflows import insert_workflow

REQUEST = ModelRequest(model="m", system="s", messages=(Message.user("hi"),))
FAST = ModelSettings(max_retries=3, retry_base_delay=0.001, retry_max_delay=0.004)


def test_backoff_doubles_with_jitter_and_is_capped():
    settings = ModelSettings(retry_base_delay=1.0, retry_max_delay=5.0)
    for retry, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (8, 5.0)]:
        delays = [backoff_delay(retry, settings, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_backoff_honours_retry_after_up_to_a_minute():
    settings = ModelSettings(retry_base_delay=0.1, retry_max_delay=1.0)
    assert backoff_delay(0, settings, 7.0) == 7.0
    assert backoff_delay(0, settings, 3600.0) == 60.0


async def test_transient_failures_are_retried_until_success():
    provider = FakeProvider()
    provider.enqueue(
        ProviderTimeout(),
        ProviderConnectionError("could not reach model provider fake: reset"),
        ProviderStatusError(529, "overloaded"),
        reply("ok"),
    )
    response = await complete_with_retries(provider, REQUEST, FAST)
    assert response.text == "ok"
    assert len(provider.requests) == 4


async def test_attempts_are_bounded():
    provider = FakeProvider()
    provider.enqueue(*[ProviderStatusError(503, "unavailable") for _ in range(10)])
    with pytest.raises(ProviderStatusError) as raised:
        await complete_with_retries(provider, REQUEST, FAST)
    assert raised.value.reason == "model provider returned 503: unavailable"
    assert len(provider.requests) == FAST.max_retries + 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(status):
    provider = FakeProvider()
    provider.enqueue(ProviderStatusError(status, "no"), reply("never"))
    with pytest.raises(ProviderStatusError):
        await complete_with_retries(provider, REQUEST, FAST)
    assert len(provider.requests) == 1


@pytest.fixture
async def db(database_url):
    database = Database(database_url, pool_size=2)
    yield database
    await database.dispose()


async def new_run(db: Database) -> str:
    async with db.write() as conn:
        await create_key(conn, "acme", None)
        account_id = await conn.scalar(select(accounts.c.id))
        workflow = await insert_workflow(
            conn,
            account_id,
            {
                "name": "w",
                "description": None,
                "model": "fake/m",
                "crew": [{"role": "r", "systemPrompt": "p"}],
                "human_in_the_loop": None,
                "tools": [],
            },
        )
        run = await t.create_run(conn, account_id, workflow, "input")
    return run["id"]


async def test_a_stale_attempt_cannot_overwrite_newer_progress(db):
    run_id = await new_run(db)
    async with db.write() as conn:
        first = await t.claim_run(conn, run_id)
    # Another engine takes the run over (the first was presumed dead)...
    async with db.write() as conn:
        second = await t.claim_run(conn, run_id)
    assert second["attempt"] == first["attempt"] + 1
    # ...so every write of the first is refused, and nothing it tried sticks.
    with pytest.raises(t.LostOwnership):
        async with db.write() as conn:
            await t.start_step(
                conn, run_id, first["attempt"], order=0, role="r", model="m", step_input="x"
            )
    with pytest.raises(t.LostOwnership):
        async with db.write() as conn:
            await t.complete_run(conn, run_id, first["attempt"], "stale output")
    async with db.read() as conn:
        run = await get_run_for_engine(conn, run_id)
    assert (run["status"], run["output"], run["total_steps"]) == ("running", None, 0)


async def test_finished_runs_cannot_be_claimed(db):
    run_id = await new_run(db)
    async with db.write() as conn:
        run = await t.claim_run(conn, run_id)
        await t.complete_run(conn, run_id, run["attempt"], "done")
    async with db.write() as conn:
        assert await t.claim_run(conn, run_id) is None


class _CountingRunner:
    """Counts passes per run; the first pass blocks until released."""

    def __init__(self) -> None:
        self.settings = Settings()  # the dispatcher reads which provider SDKs to preload
        self.passes = 0
        self.release = asyncio.Event()
        self.concurrent = 0
        self.max_concurrent = 0

    async def advance(self, run_id: str):
        self.passes += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.passes == 1:
                await self.release.wait()
        finally:
            self.concurrent -= 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_wake_ups_during_a_pass_coalesce_into_one_more_pass(db):
    runner = _CountingRunner()
    dispatcher = LocalDispatcher(runner, db, max_concurrent=10)  # type: ignore[arg-type]
    await dispatcher.start()
    dispatcher.submit("r1")
    await asyncio.sleep(0.01)
    for _ in range(5):  # e.g. a respond arriving while the run is still being advanced
        dispatcher.submit("r1")
    runner.release.set()
    while dispatcher.active:
        await asyncio.sleep(0.01)
    await dispatcher.stop()
    assert runner.passes == 2  # never lost, never run twice at once
    assert runner.max_concurrent == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_dispatcher_not_started_executes_nothing(db):
    runner = _CountingRunner()
    dispatcher = LocalDispatcher(runner, db, max_concurrent=10)  # type: ignore[arg-type]
    dispatcher.submit("r1")
    await asyncio.sleep(0.01)
    assert runner.passes == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_stopping_lets_runs_in_flight_finish_within_the_grace_period(settings, api_key):
    from loopllama.providers.registry import ProviderRegistry
    from tests.helpers import app_client

    slow = FakeProvider(delay=0.3)
    registry = ProviderRegistry(settings)
    registry.register("fake", slow)
    async with app_client(settings, api_key, providers=registry) as http:
        workflow = (
            await http.post(
                "/v1/workflows",
                json={"name": "w", "model": "fake/m", "crew": [{"role": "r", "systemPrompt": "p"}]},
            )
        ).json()["data"]
        run = (await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "x"})).json()[
            "data"
        ]
        while not slow.requests:  # the model call is in flight
            await asyncio.sleep(0.01)
    # The app has shut down; the run was not cut short.
    db = Database(settings.database.url, pool_size=1)
    async with db.read() as conn:
        stored = await get_run_for_engine(conn, run["id"])
    await db.dispose()
    assert (stored["status"], stored["output"]) == ("completed", "echo: x")
