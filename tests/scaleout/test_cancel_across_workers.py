"""Cancel on PostgreSQL reaches the worker process that holds the run: the API process
(`serve --no-worker`) records the cancel and NOTIFYs; the worker aborts the model call, whose
connection the fake provider server sees closed."""

from __future__ import annotations

import pytest

from tests.fakes.provider_server import FakeProviderServer, hang, text
from tests.scaleout.support import Cluster, create_workflow, new_api_key, trigger

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_cancel_aborts_the_model_call_in_another_worker(cluster: Cluster, scaleout_db):
    cluster.start_api()
    key = await new_api_key(scaleout_db)
    with FakeProviderServer() as model:
        model.enqueue(text("the plan", 10, 5), hang(60))
        worker = cluster.start_worker("worker-a", model.url)
        async with cluster.client(key) as http:
            workflow = await create_workflow(
                http,
                crew=[
                    {"role": "planner", "systemPrompt": "Plan."},
                    {"role": "writer", "systemPrompt": "Write."},
                ],
            )
            run_id = await trigger(http, workflow)
            model.wait_for_requests(2, timeout=15)
            response = await http.post(f"/v1/runs/{run_id}/cancel")
            assert response.status_code == 202
            assert response.json()["data"]["status"] == "cancelled"
            (closed,) = model.wait_for_disconnects(1, timeout=10)
            assert closed.request.system == "Write."
            worker.wait_for_log(f"run {run_id} cancelled: aborted here", timeout=10)
            run = (await http.get(f"/v1/runs/{run_id}")).json()["data"]
    assert run["status"] == "cancelled"
    assert [s["error"] for s in run["steps"]] == [None, "cancelled"]
    assert len(model.requests) == 2
