"""`GET /v1/runs/{id}/stream` over a real loopback connection, on SQLite and PostgreSQL:
replay then live, text deltas, resuming, keep-alives, a pause, and closing at the end."""

from __future__ import annotations

import asyncio

from loopllama.providers.fake import reply, tool_call
from tests.events.support import (
    Frame,
    assert_gapless,
    collect,
    deltas,
    durable,
    events_of,
    read_frames,
    types,
)
from tests.helpers import wait_for_run
from tests.hitl.support import make_workflow, respond, start

CREW = [
    {"role": "planner", "systemPrompt": "Plan it."},
    {"role": "writer", "systemPrompt": "Write it."},
]


async def _workflow(http, crew=CREW) -> dict:
    body = {"name": "stream", "model": "fake/test", "crew": crew}
    response = await http.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _gated(text: str, gate: asyncio.Event):
    async def answer(_request):
        await gate.wait()
        return reply(text)

    return answer


async def _read_until(http, run_id: str, frames: list[Frame], seen: asyncio.Event, count: int):
    async with http.stream("GET", f"/v1/runs/{run_id}/stream") as response:
        assert response.status_code == 200
        async for frame in read_frames(response):
            frames.append(frame)
            if len(durable(frames)) >= count:
                seen.set()


async def test_live_stream_sends_events_and_deltas_that_make_the_output(live, fake_provider):
    gate = asyncio.Event()
    fake_provider.enqueue(
        _gated("First, outline the main points. ", gate), reply("Then write them up well.")
    )
    workflow = await _workflow(live)
    run_id = await start(live, workflow)
    frames: list[Frame] = []
    replayed = asyncio.Event()
    reader = asyncio.create_task(_read_until(live, run_id, frames, replayed, 3))
    await asyncio.wait_for(replayed.wait(), 10)  # queued, started, step.started: live now
    gate.set()
    await asyncio.wait_for(reader, 20)  # the server closed the stream after run.completed

    run = await wait_for_run(live, run_id)
    streamed = durable(frames)
    assert streamed == await events_of(live, run_id)
    assert types(streamed)[-1] == "run.completed"
    assert_gapless(streamed)
    for step in run["steps"]:
        pieces = [d for d in deltas(frames) if d["step_id"] == step["id"]]
        # Word by word from the fake; on PostgreSQL pieces published together may be merged.
        assert pieces
        assert {d["order"] for d in pieces} == {step["order"]}
        assert "".join(d["text"] for d in pieces) == step["output"]
    # Every delta of a step arrives between its step.started and its step.completed.
    order = [
        (f.event, (f.json or {}).get("order", (f.json or {}).get("data", {}).get("order")))
        for f in frames
        if f.data is not None
    ]
    first_delta = order.index(("step.delta", 0))
    assert order[first_delta - 1] == ("step.started", 0)
    assert all(f.id is None for f in frames if f.event == "step.delta")
    assert [f.id for f in frames if f.event != "step.delta" and f.data] == [
        str(e["id"]) for e in streamed
    ]


async def test_a_finished_run_replays_without_deltas_and_closes(live, fake_provider):
    workflow = await _workflow(live)
    run_id = await start(live, workflow)
    await wait_for_run(live, run_id)

    frames = await collect(live, run_id)
    assert deltas(frames) == []
    assert durable(frames) == await events_of(live, run_id)
    assert frames[0].event == "run.queued" and frames[0].id == "1"


async def test_resume_after_event_n_replays_exactly_what_follows(live, fake_provider):
    workflow = await _workflow(live)
    run_id = await start(live, workflow)
    await wait_for_run(live, run_id)
    log = await events_of(live, run_id)

    for n in (0, 3, 6):
        by_header = durable(await collect(live, run_id, headers={"Last-Event-ID": str(n)}))
        assert by_header == log[n:]
        by_query = durable(await collect(live, run_id, after=n))
        assert by_query == log[n:]
    # A reconnecting EventSource keeps the URL it opened with: the header wins over ?after=.
    both = durable(await collect(live, run_id, headers={"Last-Event-ID": "5"}, after=1))
    assert [e["id"] for e in both] == [6, 7]


async def test_a_paused_runs_stream_stays_open_through_the_respond(live, fake_provider):
    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}), reply("Done, friendly."))
    workflow = await make_workflow(
        live, crew=[{"role": "a", "systemPrompt": "Help."}], hitl={"ask_questions": True}
    )
    run_id = await start(live, workflow)
    await wait_for_run(live, run_id, ("waiting_input",))

    frames: list[Frame] = []
    async with live.stream("GET", f"/v1/runs/{run_id}/stream") as response:
        async for frame in read_frames(response):
            frames.append(frame)
            if frame.comments == ["keep-alive"] and "run.resumed" not in types(durable(frames)):
                # Idle and still open while paused: answer the question now.
                assert types(durable(frames))[-1] == "run.waiting_input"
                assert (
                    await respond(live, run_id, action="input", input="friendly")
                ).status_code == 202
    streamed = durable(frames)
    assert types(streamed)[-4:] == ["run.resumed", "run.started", "step.completed", "run.completed"]
    assert_gapless(streamed)
    assert "".join(d["text"] for d in deltas(frames)) == "Done, friendly."


async def test_bad_last_event_id_and_after_are_400_json(live, fake_provider):
    workflow = await _workflow(live)
    run_id = await start(live, workflow)
    bad = await live.get(f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "Invalid Last-Event-ID header"}
    bad = await live.get(f"/v1/runs/{run_id}/stream", params={"after": "-2"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "Invalid 'after': Number must be greater than or equal to 0"}
    unknown = await live.get("/v1/runs/nope/stream")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Not found"}
    anonymous = await live.get(f"/v1/runs/{run_id}/stream", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    posted = await live.post(f"/v1/runs/{run_id}/stream")
    assert (posted.status_code, posted.json()) == (405, {"error": "Method not allowed"})
