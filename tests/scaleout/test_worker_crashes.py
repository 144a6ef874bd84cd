"""Workers die and runs go on: SIGKILL in the middle of a step or of an approved tool call,
and SIGTERM with runs in flight. Real processes on the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time

import psycopg
import pytest

from tests.fakes.provider_server import FakeProviderServer, Reply, stall, text, tool_call
from tests.fakes.slow_endpoint import SlowEndpoint
from tests.scaleout.support import (
    Cluster,
    create_workflow,
    new_api_key,
    trigger,
    wait_until_finished,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CREW = [
    {"role": "planner", "systemPrompt": "Plan."},
    {"role": "writer", "systemPrompt": "Write."},
    {"role": "editor", "systemPrompt": "Edit."},
]


def row_counts(database_url: str, run_id: str) -> tuple[list[int], int]:
    """The run's step orders as stored, and its attempt number."""
    with psycopg.connect(database_url) as conn:
        orders = [
            r[0]
            for r in conn.execute(
                'SELECT "order" FROM steps WHERE run_id = %s ORDER BY "order"', (run_id,)
            )
        ]
        attempt = conn.execute("SELECT attempt FROM runs WHERE id = %s", (run_id,)).fetchone()[0]
    return orders, attempt


async def test_sigkill_mid_step_another_worker_finishes_the_run(cluster: Cluster, scaleout_db):
    cluster.start_api()
    key = await new_api_key(scaleout_db)
    with FakeProviderServer() as model:
        # The planner answers; the writer's call hangs until its worker is killed under it.
        model.enqueue(text("the plan", 10, 5), stall(60))
        first = cluster.start_worker("worker-a", model.url)
        async with cluster.client(key) as http:
            workflow = await create_workflow(http, crew=CREW)
            run_id = await trigger(http, workflow)
            model.wait_for_requests(2, timeout=15)
            cluster.start_worker("worker-b", model.url)
            model.enqueue(text("the draft", 20, 8), text("the edit", 30, 9))
            killed_at = time.monotonic()
            first.kill()
            done = (await wait_until_finished(http, [run_id], timeout=30))[run_id]
            recovered_in = time.monotonic() - killed_at
        systems = [r.system for r in model.requests]

    assert done["status"] == "completed", done
    assert [s["output"] for s in done["steps"]] == ["the plan", "the draft", "the edit"]
    # The planner was not run again; the writer's interrupted call was made once more.
    assert systems == ["Plan.", "Write.", "Write.", "Edit."]
    # The killed step is one row, in its final form (tokens of the call that answered only).
    writer = done["steps"][1]
    assert (writer["tokens_in"], writer["tokens_out"]) == (20, 8)
    assert (done["tokens_in"], done["tokens_out"]) == (60, 22)
    orders, attempt = row_counts(scaleout_db, run_id)
    assert orders == [0, 1, 2]
    assert attempt == 2  # claimed by the dead worker, then by the one that finished it
    print(f"finished {recovered_in:.1f}s after the kill")


async def test_sigkill_during_an_approved_tool_call_never_runs_it_twice(
    cluster: Cluster, scaleout_db
):
    endpoint = SlowEndpoint()
    cluster.env["LOOPLLAMA_HTTP_TOOL_ALLOW"] = "127.0.0.1"
    cluster.start_api()
    key = await new_api_key(scaleout_db)
    try:
        with FakeProviderServer() as model:
            model.enqueue(tool_call("crm_upsert", {"email": "ada@example.com"}))
            first = cluster.start_worker("worker-a", model.url)
            async with cluster.client(key) as http:
                workflow = await create_workflow(
                    http,
                    crew=[{"role": "crm", "systemPrompt": "CRM.", "tools": ["crm_upsert"]}],
                    tools=[
                        {
                            "name": "crm_upsert",
                            "description": "Upsert a contact",
                            "input_schema": {
                                "type": "object",
                                "properties": {"email": {"type": "string"}},
                            },
                            "url": endpoint.url,
                        }
                    ],
                    human_in_the_loop={"approve_tools": ["crm_upsert"]},
                )
                run_id = await trigger(http, workflow)
                paused = await wait_for_status(http, run_id, "waiting_input")
                assert paused["pending"]["tool"] == "crm_upsert"
                approved = await http.post(f"/v1/runs/{run_id}/respond", json={"action": "approve"})
                assert approved.status_code == 202, approved.text
                assert endpoint.arrived.wait(15), "the approved tool was never called"

                cluster.start_worker("worker-b", model.url)
                model.enqueue(text("I will check the CRM before retrying.", 5, 5))
                first.kill()  # dies while the endpoint is still working on the call
                endpoint.release.set()
                done = (await wait_until_finished(http, [run_id], timeout=30))[run_id]
            told = model.requests[-1].messages[-1]["content"][0]
    finally:
        endpoint.close()

    assert done["status"] == "completed", done
    assert len(endpoint.calls) == 1  # the tool ran once, across both workers
    (call,) = done["steps"][0]["tool_calls"]
    assert call["status"] == "unknown"
    assert told["is_error"] is True and "unknown" in json.dumps(told["content"])


async def wait_for_status(http, run_id: str, status: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = (await http.get(f"/v1/runs/{run_id}")).json()["data"]
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)


def answer_a(request):
    return Reply("A: quick", delay=1.0) if "quick" in request.last_user_text else stall(60)


async def test_sigterm_finishes_or_hands_back_within_the_grace_period(
    cluster: Cluster, scaleout_db
):
    cluster.start_api()
    key = await new_api_key(scaleout_db)
    with FakeProviderServer() as model_a, FakeProviderServer() as model_b:
        # Worker A answers "quick" within a second, and never answers "slow".
        model_a.enqueue(answer_a, answer_a)
        first = cluster.start_worker("worker-a", model_a.url, "--grace", "2")
        async with cluster.client(key) as http:
            workflow = await create_workflow(http, crew=CREW[:1])
            quick = await trigger(http, workflow, "quick")
            slow = await trigger(http, workflow, "slow")
            model_a.wait_for_requests(2, timeout=15)

            first.terminate()
            signalled = time.monotonic()
            later = await trigger(http, workflow, "later")  # after SIGTERM: not for worker A
            cluster.start_worker("worker-b", model_b.url)
            exit_code = first.process.wait(timeout=20)
            exited_in = time.monotonic() - signalled
            done = await wait_until_finished(http, [quick, slow, later], timeout=30)

        a_inputs = [r.last_user_text for r in model_a.requests]
        b_inputs = [r.last_user_text for r in model_b.requests]

    assert exit_code == 0, first.log
    assert 1.5 < exited_in < 2 + 5, f"exited after {exited_in:.1f}s"
    assert done[quick]["output"] == "A: quick"  # finished by A within the grace period
    assert done[slow]["output"] == "echo: slow"  # handed back, finished by B
    assert done[later]["output"] == "echo: later"
    assert sorted(a_inputs) == ["quick", "slow"]  # A took nothing after SIGTERM
    assert sorted(b_inputs) == ["later", "slow"]
    assert all(run["status"] == "completed" for run in done.values())
