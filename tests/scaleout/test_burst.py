"""A burst of triggers from many connections at once, on two API processes and two workers:
every 202 becomes a run that completes, and nothing answers 5xx."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.fakes.provider_server import FakeProviderServer
from tests.scaleout.support import Cluster, create_workflow, new_api_key, wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TRIGGERS = 2000
CONNECTIONS = 100


async def test_a_burst_of_triggers_all_complete(cluster: Cluster, scaleout_db):
    first = cluster.start_api(name="api-1")
    second = cluster.start_api(name="api-2")
    key = await new_api_key(scaleout_db)
    with FakeProviderServer(delay=0.01) as model:
        cluster.start_worker("worker-a", model.url)
        cluster.start_worker("worker-b", model.url)
        async with cluster.client(key) as http:
            workflow = await create_workflow(http, crew=[{"role": "a", "systemPrompt": "A."}])
        apis = [cluster.api_url, _url(second)]
        path = f"/v1/workflows/{workflow['id']}/runs"
        statuses: list[int] = []
        accepted: list[str] = []
        headers = {"Authorization": f"Bearer {key}"}
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            queue = list(range(TRIGGERS))

            async def client(n: int) -> None:
                base = apis[n % len(apis)]
                while queue:
                    i = queue.pop()
                    async with session.post(base + path, json={"input": f"burst {i}"}) as response:
                        statuses.append(response.status)
                        if response.status == 202:
                            accepted.append((await response.json())["data"]["id"])

            started = time.monotonic()
            await asyncio.gather(*(client(n) for n in range(CONNECTIONS)))
            burst_seconds = time.monotonic() - started

        async with cluster.client(key, timeout=30) as http:
            done = await wait_until_finished(http, accepted, timeout=120)
        drained_seconds = time.monotonic() - started
    print(f"{TRIGGERS} triggers in {burst_seconds:.1f}s; all finished after {drained_seconds:.1f}s")

    assert not [s for s in statuses if s >= 500], sorted(set(statuses))
    assert statuses.count(202) == TRIGGERS, sorted(set(statuses))
    assert all(run["status"] == "completed" for run in done.values())
    assert len(model.requests) >= TRIGGERS
    assert first.process.poll() is None


def _url(process) -> str:
    port = process.args[process.args.index("--port") + 1]
    return f"http://127.0.0.1:{port}"
