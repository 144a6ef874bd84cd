"""The queue's safety nets, in process on PostgreSQL: a waiting wake-up is pinned until the
transaction that found it commits, and the sweeps give every runnable run a job again (a run
whose job vanished, a job a worker lost track of, a stalled worker's job, an overdue pause)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from sqlalchemy import text

from loopllama.api.app import create_app
from loopllama.engine.queue import QueueDispatcher, WorkerSettings, jobs
from loopllama.engine.queue import dispatcher as queue_dispatcher
from loopllama.engine.runner import Runner
from loopllama.providers.fake import FakeProvider, tool_call
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import DatabaseSettings, Settings
from loopllama.store.db import Database
from tests.scaleout.support import new_api_key

pytestmark = pytest.mark.postgres

FAST = WorkerSettings(heartbeat=0.2, stalled_after=0.6, sweep_every=0.2, poll_interval=0.1)


@pytest.fixture
def settings(scaleout_db: str) -> Settings:
    return Settings(database=DatabaseSettings(url=scaleout_db, pool_size=3))


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API alone (no engine in this process), as `serve --no-worker`."""
    key = await new_api_key(settings.database.url)
    registry = ProviderRegistry(settings)
    registry.register("fake", FakeProvider())  # so that `fake/...` models validate
    app = create_app(settings, providers=registry, migrate=False, run_engine=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as client:
            yield client


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[tuple[QueueDispatcher, FakeProvider]]:
    """A worker in this process, answering from a scripted fake model; started by the test."""
    fake = FakeProvider()
    registry = ProviderRegistry(settings)
    registry.register("fake", fake)
    db = Database(settings.database.url, pool_size=3)
    dispatcher = QueueDispatcher(Runner(db, registry, settings), db, concurrency=50, options=FAST)
    try:
        yield dispatcher, fake
    finally:
        await dispatcher.stop(grace=0)
        await registry.aclose()
        await db.dispose()


async def trigger(api: httpx.AsyncClient, **workflow: object) -> str:
    body = {"name": "w", "model": "fake/test", "crew": [{"role": "a", "systemPrompt": "A."}]}
    created = await api.post("/v1/workflows", json={**body, **workflow})
    assert created.status_code == 201, created.text
    run = await api.post(f"/v1/workflows/{created.json()['data']['id']}/runs", json={"input": "x"})
    assert run.status_code == 202, run.text
    return run.json()["data"]["id"]


async def status_of(api: httpx.AsyncClient, run_id: str, wanted: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = (await api.get(f"/v1/runs/{run_id}")).json()["data"]
        if run["status"] == wanted:
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)


def sql(url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


async def test_a_waiting_wake_up_is_pinned_until_the_enqueuing_transaction_commits(api, settings):
    url = settings.database.url
    run_id = await trigger(api)  # its wake-up is waiting in the queue
    fetch = "SELECT id FROM procrastinate_fetch_job_v2(ARRAY['runs']::varchar[], NULL)"
    db = Database(url, pool_size=1)
    try:
        async with db.write() as conn:
            await jobs.defer_advance(conn, run_id)  # a second wake-up: refused, not an error
            await conn.execute(text("SELECT 1"))  # the transaction is still usable
            assert sql(url, fetch) == [(None,)]  # the waiting job cannot start yet
        (job,) = sql(url, fetch)
    finally:
        await db.dispose()
    assert job[0] is not None
    assert sql(url, "SELECT count(*) FROM procrastinate_jobs WHERE lock = %s", f"run:{run_id}") == [
        (1,)
    ]


async def test_a_runnable_run_without_a_job_gets_one(api, worker, settings):
    run_id = await trigger(api)
    sql(settings.database.url, "DELETE FROM procrastinate_jobs WHERE lock = %s", f"run:{run_id}")
    dispatcher, _ = worker
    await dispatcher.start()
    assert (await status_of(api, run_id, "completed"))["output"] == "echo: x"


async def test_a_job_the_worker_lost_track_of_is_handed_back(api, worker, settings, monkeypatch):
    monkeypatch.setattr(queue_dispatcher, "ZOMBIE_AFTER", 0.5)
    url = settings.database.url
    run_id = await trigger(api)
    sql(url, "DELETE FROM procrastinate_jobs WHERE lock = %s", f"run:{run_id}")
    dispatcher, _ = worker
    await dispatcher.start()
    worker_id = dispatcher._worker.worker_id
    # As if the answer to its fetch had been lost: the database says this worker runs it.
    sql(
        url,
        "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args, "
        "status, worker_id) VALUES ('runs', %s, %s, %s, %s, 'doing', %s)",
        jobs.ADVANCE,
        f"run:{run_id}",
        f"run:{run_id}",
        psycopg.types.json.Jsonb({"run_id": run_id}),
        worker_id,
    )
    assert (await status_of(api, run_id, "completed"))["output"] == "echo: x"


async def test_the_job_of_a_worker_that_stopped_beating_is_resumed(api, worker, settings):
    url = settings.database.url
    run_id = await trigger(api)
    (dead,) = sql(
        url,
        "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') "
        "RETURNING id",
    )
    sql(
        url,
        "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE lock = %s",
        dead[0],
        f"run:{run_id}",
    )
    dispatcher, _ = worker
    await dispatcher.start()
    assert (await status_of(api, run_id, "completed"))["output"] == "echo: x"


async def test_an_overdue_pause_whose_deadline_job_vanished_is_decided(api, worker, settings):
    dispatcher, fake = worker
    fake.enqueue(tool_call("ask_human", {"question": "Which?"}))
    await dispatcher.start()
    run_id = await trigger(api, human_in_the_loop={"ask_questions": True, "timeout_seconds": 1})
    await status_of(api, run_id, "waiting_input")
    sql(settings.database.url, "DELETE FROM procrastinate_jobs WHERE task_name = %s", jobs.EXPIRE)
    done = await status_of(api, run_id, "completed")
    assert "No answer" in fake.requests[-1].messages[-1].parts[0].content
    assert done["output"].startswith("echo: ")


async def test_jobs_fetched_while_the_worker_began_stopping_go_back_to_the_queue(
    api, worker, settings, monkeypatch
):
    """A SIGTERM that lands while a fetch is on its way: what it brings back is not started by
    the stopping worker (it takes no new run), but handed back for another one."""
    fetched, release = asyncio.Event(), asyncio.Event()
    fetch = queue_dispatcher._BatchWorker._fetch

    async def fetch_then_wait(self, limit: int):
        found = await fetch(self, limit)
        if found:
            fetched.set()
            await release.wait()  # the answer is "on its way" while stopping begins
        return found

    monkeypatch.setattr(queue_dispatcher._BatchWorker, "_fetch", fetch_then_wait)
    dispatcher, fake = worker
    await dispatcher.start()
    run_id = await trigger(api)
    await asyncio.wait_for(fetched.wait(), timeout=10)
    stopping = asyncio.create_task(dispatcher.stop(grace=5))
    await asyncio.sleep(0)  # stopping has begun: the worker was told to take nothing new
    release.set()
    await asyncio.wait_for(stopping, timeout=20)

    assert fake.requests == []  # the stopping worker did not run it
    lock = f"run:{run_id}"
    query = "SELECT status, worker_id FROM procrastinate_jobs WHERE lock = %s"
    assert sql(settings.database.url, query, lock) == [("todo", None)]
    assert (await api.get(f"/v1/runs/{run_id}")).json()["data"]["status"] == "queued"

    registry = ProviderRegistry(settings)
    registry.register("fake", FakeProvider())
    db = Database(settings.database.url, pool_size=3)
    other = QueueDispatcher(Runner(db, registry, settings), db, concurrency=5, options=FAST)
    await other.start()
    try:
        assert (await status_of(api, run_id, "completed"))["output"] == "echo: x"
    finally:
        await other.stop(grace=0)
        await registry.aclose()
        await db.dispose()


async def test_a_notification_during_a_fetch_is_not_cleared_with_it():
    wake = queue_dispatcher._WakeUp()
    wake.set()  # a job was inserted
    await wake.wait()  # the worker wakes up and fetches it
    wake.clear()  # after the fetch: nothing new since it woke up
    assert not wake.is_set()
    wake.set()
    await wake.wait()  # the worker wakes up, fetches once more (finds nothing yet) ...
    wake.set()  # ... while another job's notification arrives
    wake.clear()  # procrastinate clears after that fetch: not this time
    assert wake.is_set()  # so the worker looks again at once instead of at the next poll
