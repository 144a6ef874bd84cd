"""Nothing is lost: SIGKILL the server in the middle of a run, start it again, the run finishes
with every step recorded once."""

from __future__ import annotations

import sqlite3

import pytest

from tests.fakes.provider_server import stall, text
from tests.helpers import wait_for_run

pytestmark = pytest.mark.slow

CREW = [
    {"role": "planner", "systemPrompt": "Plan."},
    {"role": "writer", "systemPrompt": "Write."},
    {"role": "editor", "systemPrompt": "Edit."},
]


async def test_sigkill_mid_step_then_restart_completes_the_run(live_server, provider_server):
    # Planner answers; the writer's model call hangs until the process is killed under it.
    provider_server.enqueue(text("the plan", 10, 5), stall(60))
    async with live_server.client() as http:
        workflow = (
            await http.post(
                "/v1/workflows", json={"name": "crash", "model": "claude-test", "crew": CREW}
            )
        ).json()["data"]
        run = (
            await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
        ).json()["data"]
        provider_server.wait_for_requests(2, timeout=15)  # the writer's call is in flight

    live_server.kill()
    provider_server.enqueue(text("the draft", 20, 8), text("the edit", 30, 9))
    live_server.start()

    async with live_server.client() as http:
        done = await wait_for_run(http, run["id"], ("completed", "failed"), timeout=30)
    assert done["status"] == "completed", done
    assert done["output"] == "the edit"
    assert [s["role"] for s in done["steps"]] == ["planner", "writer", "editor"]
    assert [s["output"] for s in done["steps"]] == ["the plan", "the draft", "the edit"]
    assert done["total_steps"] == 3
    # The killed call never answered, so its tokens were never counted.
    assert (done["tokens_in"], done["tokens_out"]) == (60, 22)
    # The planner ran once; the writer's model call was made again after the restart.
    systems = [r.system for r in provider_server.requests]
    assert systems == ["Plan.", "Write.", "Write.", "Edit."]
    with sqlite3.connect(live_server.database_url.removeprefix("sqlite:///")) as db:
        rows = db.execute('SELECT run_id, "order" FROM steps').fetchall()
    assert sorted(rows) == [(run["id"], 0), (run["id"], 1), (run["id"], 2)]


async def test_runs_queued_when_the_server_died_are_run_after_restart(live_server, provider_server):
    provider_server.enqueue(stall(60))
    async with live_server.client() as http:
        workflow = (
            await http.post(
                "/v1/workflows",
                json={"name": "q", "model": "claude-test", "crew": CREW[:1]},
            )
        ).json()["data"]
        first = await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "a"})
        second = await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "b"})
        provider_server.wait_for_requests(2, timeout=15)
    live_server.kill()
    live_server.start()
    async with live_server.client() as http:
        for response in (first, second):
            run_id = response.json()["data"]["id"]
            done = await wait_for_run(http, run_id, ("completed", "failed"), timeout=30)
            assert done["status"] == "completed"
            assert len(done["steps"]) == 1
