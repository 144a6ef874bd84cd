"""Run events across processes on PostgreSQL: a stream served by `serve --no-worker` follows a
run that a separate `worker` executes (LISTEN/NOTIFY, deltas included), and the log of a run
taken over after SIGKILL of its worker stays gapless, with no event of the dead attempt."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from tests.fakes.provider_server import FakeProviderServer, Reply, stall, text
from tests.scaleout.support import (
    Cluster,
    create_workflow,
    new_api_key,
    trigger,
    wait_until_finished,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def _stream(http, run_id: str, frames: list, live: asyncio.Event) -> None:
    async with http.stream("GET", f"/v1/runs/{run_id}/stream") as response:
        assert response.status_code == 200
        event, data = None, None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                frames.append((event, data))
                event, data = None, None
                if sum(1 for e, _ in frames if e == "step.started"):
                    live.set()


async def test_a_stream_on_the_api_follows_a_run_executed_by_a_worker(
    cluster: Cluster, scaleout_db
):
    cluster.start_api()
    key = await new_api_key(scaleout_db)
    gate = threading.Event()

    def held_answer(_request):  # runs on the fake server's thread
        gate.wait(15)
        return Reply("Streams cross processes through PostgreSQL.", chunk_delay=0.02)

    with FakeProviderServer() as model:
        model.enqueue(held_answer)
        cluster.start_worker("worker", model.url)
        async with cluster.client(key, timeout=30) as http:
            workflow = await create_workflow(http, crew=[{"role": "w", "systemPrompt": "W."}])
            run_id = await trigger(http, workflow)
            frames: list = []
            live = asyncio.Event()
            reader = asyncio.create_task(_stream(http, run_id, frames, live))
            try:
                await asyncio.wait_for(live.wait(), 20)
            finally:
                gate.set()  # the worker's model call answers now, piece by piece
            await asyncio.wait_for(reader, 30)
            run = (await wait_until_finished(http, [run_id], timeout=10))[run_id]
            log = (await http.get(f"/v1/runs/{run_id}/events")).json()["data"]

    durable = [data for event, data in frames if event != "step.delta"]
    deltas = [data for event, data in frames if event == "step.delta"]
    assert durable == log
    assert [e["type"] for e in log] == [
        "run.queued", "run.started", "step.started", "step.completed", "run.completed",
    ]  # fmt: skip
    assert "".join(d["text"] for d in deltas) == run["output"]
    assert {d["step_id"] for d in deltas} == {run["steps"][0]["id"]}
    # The deltas came between step.started and step.completed, as the worker produced them.
    kinds = [event for event, _ in frames]
    assert kinds.index("step.delta") > kinds.index("step.started")
    assert len(kinds) - 1 - kinds[::-1].index("step.delta") < kinds.index("step.completed")


async def test_sigkill_mid_step_leaves_a_gapless_log(cluster: Cluster, scaleout_db):
    cluster.start_api()
    key = await new_api_key(scaleout_db)
    crew = [{"role": "planner", "systemPrompt": "Plan."}, {"role": "writer", "systemPrompt": "W."}]
    with FakeProviderServer() as model:
        model.enqueue(text("the plan", 10, 5), stall(60))
        first = cluster.start_worker("worker-a", model.url)
        async with cluster.client(key) as http:
            workflow = await create_workflow(http, crew=crew)
            run_id = await trigger(http, workflow)
            model.wait_for_requests(2, timeout=15)
            cluster.start_worker("worker-b", model.url)
            model.enqueue(text("the draft", 20, 8))
            first.kill()
            done = (await wait_until_finished(http, [run_id], timeout=30))[run_id]
            log = (await http.get(f"/v1/runs/{run_id}/events")).json()["data"]

    assert done["status"] == "completed", done
    assert [e["id"] for e in log] == list(range(1, len(log) + 1))
    assert [(e["type"], e["data"].get("order")) for e in log] == [
        ("run.queued", None),
        ("run.started", None),  # worker A
        ("step.started", 0),
        ("step.completed", 0),
        ("step.started", 1),  # A dies in this step's model call: it logged nothing more
        ("run.started", None),  # worker B takes the run over and finishes the same step
        ("step.completed", 1),
        ("run.completed", None),
    ]
    assert log[-2]["data"]["output"] == "the draft"
