"""Fairness on PostgreSQL across two workers: while one account has a backlog in the queue,
another account's run starts within the next few jobs, not after the backlog."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.provider_server import FakeProviderServer
from tests.scaleout.support import Cluster, create_workflow, new_api_key, wait_until_finished

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BACKLOG = 120
SLOTS_PER_WORKER = 2


async def test_another_accounts_run_starts_ahead_of_a_backlog(cluster: Cluster, scaleout_db):
    cluster.start_api()
    alice = await new_api_key(scaleout_db, "alice")
    bob = await new_api_key(scaleout_db, "bob")
    slots = {"LOOPLLAMA_MAX_CONCURRENT_RUNS": str(SLOTS_PER_WORKER)}
    with FakeProviderServer(delay=0.3) as model:
        cluster.start_worker("worker-a", model.url, **slots)
        cluster.start_worker("worker-b", model.url, **slots)
        async with cluster.client(alice) as a, cluster.client(bob) as b:
            crew = [{"role": "solo", "systemPrompt": "S."}]
            a_flow = await create_workflow(a, crew=crew)
            b_flow = await create_workflow(b, crew=crew)
            path = f"/v1/workflows/{a_flow['id']}/runs"
            backlog = await asyncio.gather(
                *(a.post(path, json={"input": f"alice {i}"}) for i in range(BACKLOG))
            )
            assert all(r.status_code == 202 for r in backlog)
            answer = await b.post(f"/v1/workflows/{b_flow['id']}/runs", json={"input": "bob"})
            bob_run = answer.json()["data"]
            done = await wait_until_finished(b, [bob_run["id"]], timeout=60)
            bob_started = done[bob_run["id"]]["started_at"]
            runs = []
            after = None
            while True:  # every alice run, with its start time
                query = f"/v1/runs?limit=100{f'&after={after}' if after else ''}"
                page = (await a.get(query)).json()
                runs += page["data"]
                if not page["has_more"]:
                    break
                after = page["data"][-1]["id"]
    queued_then = [r for r in runs if r["created_at"] <= bob_run["created_at"]]
    overtaking = [
        r
        for r in queued_then
        if r["started_at"] is not None
        and r["started_at"] > bob_run["created_at"]
        and r["started_at"] < bob_started
    ]
    waiting_when_bob_came = [
        r for r in queued_then if r["started_at"] is None or r["started_at"] > bob_run["created_at"]
    ]
    print(
        f"{len(waiting_when_bob_came)} alice runs waiting when bob triggered; "
        f"{len(overtaking)} started before bob's"
    )
    assert len(waiting_when_bob_came) > 40  # a real backlog (FIFO would make bob wait for it)
    # Round-robin: at most about one alice run per slot freed before bob's turn came.
    assert len(overtaking) <= 2 * SLOTS_PER_WORKER + 2
