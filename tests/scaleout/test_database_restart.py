"""PostgreSQL restarted under load: while it is down the API answers 503 with the error
envelope (never a hang, never a 500), and every run accepted before and after completes.

The test runs its own throwaway PostgreSQL server, so restarting it disturbs no one else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.provider_server import FakeProviderServer
from tests.scaleout.support import (
    Cluster,
    PrivatePostgres,
    create_workflow,
    new_api_key,
    scratch_database,
    wait_until_finished,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

UNAVAILABLE = {"error": "Service temporarily unavailable"}


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres().create()
    except Exception as error:  # no server binaries, or not allowed to run them
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot run a private PostgreSQL server: {error}")
    try:
        yield server
    finally:
        server.destroy()


async def test_postgres_restart_under_load(private_postgres: PrivatePostgres, tmp_path):
    with scratch_database(private_postgres.admin_url) as url:
        cluster = Cluster(tmp_path, url)
        try:
            await _restart_under_load(cluster, private_postgres, url)
        finally:
            with contextlib.suppress(Exception):
                private_postgres.start()  # running at the end, whatever happened
            cluster.close()
            print(cluster.logs())


async def _restart_under_load(cluster: Cluster, server: PrivatePostgres, url: str) -> None:
    cluster.start_api()
    key = await new_api_key(url)
    accepted: list[str] = []
    outcomes: list[tuple[int, object, float]] = []
    with FakeProviderServer(delay=0.05) as model:
        cluster.start_worker("worker-a", model.url)
        cluster.start_worker("worker-b", model.url)
        async with cluster.client(key, timeout=15) as http:
            workflow = await create_workflow(
                http,
                crew=[{"role": "a", "systemPrompt": "A."}, {"role": "b", "systemPrompt": "B."}],
            )
            path = f"/v1/workflows/{workflow['id']}/runs"
            stop = asyncio.Event()

            async def load(client_id: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    started = time.monotonic()
                    try:
                        response = await http.post(path, json={"input": f"c{client_id}-{n}"})
                    except httpx.TimeoutException:
                        outcomes.append((0, "timeout", time.monotonic() - started))
                        continue
                    body = response.json()
                    outcomes.append((response.status_code, body, time.monotonic() - started))
                    if response.status_code == 202:
                        accepted.append(body["data"]["id"])
                    await asyncio.sleep(0.02)

            clients = [asyncio.create_task(load(i)) for i in range(8)]
            await asyncio.sleep(2)
            before = len(accepted)
            await asyncio.to_thread(server.stop, "fast")  # in-flight transactions are cut
            await asyncio.sleep(2)
            during = len(outcomes)
            await asyncio.to_thread(server.start)
            await asyncio.sleep(4)
            stop.set()
            await asyncio.gather(*clients)

            done = await wait_until_finished(http, accepted, timeout=90)

    statuses = {status for status, _, _ in outcomes}
    assert statuses <= {202, 503}, [o for o in outcomes if o[0] not in (202, 503)][:5]
    unavailable = [body for status, body, _ in outcomes if status == 503]
    assert unavailable, "the load never saw the database down"
    assert all(body == UNAVAILABLE for body in unavailable)
    # Connection attempts give up after 5 s: a request far past that has hung.
    assert max(elapsed for _, _, elapsed in outcomes) < 20, "a request hung"
    assert before > 0 and len(accepted) > before and during > before
    assert len(accepted) > len([o for o in outcomes[:during] if o[0] == 202])  # after restart
    failed = [run for run in done.values() if run["status"] != "completed"]
    assert not failed, failed[:3]
    for process in cluster.processes:
        assert process.process.poll() is None, f"{process.name} died:\n{process.log}"
