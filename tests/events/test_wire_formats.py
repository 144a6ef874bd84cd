"""Text deltas from the real SDKs: a run on Anthropic and on OpenAI (the fake server speaking
their streaming formats) streams the agents' text, which adds up to each step's output."""

from __future__ import annotations

import httpx
import pytest

from loopllama.api.app import create_app
from loopllama.providers.registry import ProviderRegistry
from tests.events.support import collect, deltas, durable, events_of, read_frames, serve
from tests.fakes.provider_server import Reply, text, tool_call
from tests.helpers import wait_for_run, with_fake_providers
from tests.hitl.support import make_workflow, respond, start


@pytest.fixture
async def wire(settings, provider_server, api_key):
    settings = with_fake_providers(settings, provider_server)
    registry = ProviderRegistry(settings)
    # Made now, not at the first model call: importing the SDKs blocks the event loop that
    # also serves the test's HTTP connection (for seconds on a busy machine).
    registry.get("anthropic"), registry.get("openai")
    app = create_app(settings, providers=registry, migrate=False)
    async with app.router.lifespan_context(app), serve(app) as url:
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as http:
            yield http


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "gpt-4.1"])
async def test_deltas_add_up_to_each_steps_output(wire, provider_server, model):
    provider_server.enqueue(
        Reply("A plan in three parts.", chunk_delay=0.01),
        tool_call("ask_human", {"question": "Formal?"}, text="One question first."),
        text("Dear team, the plan is ready."),
    )
    workflow = await make_workflow(
        wire,
        model=model,
        crew=[
            {"role": "planner", "systemPrompt": "Plan."},
            {"role": "writer", "systemPrompt": "Write."},
        ],
        hitl={"ask_questions": True},
    )
    run_id = await start(wire, workflow)
    await wait_for_run(wire, run_id, ("waiting_input",))
    frames, answered = [], False
    async with wire.stream("GET", f"/v1/runs/{run_id}/stream") as response:
        async for frame in read_frames(response):
            frames.append(frame)
            if frame.comments and not answered:  # replayed, idle, live: answer now
                frames, answered = [], True
                assert (await respond(wire, run_id, action="input", input="No")).status_code == 202
    run = await wait_for_run(wire, run_id)
    assert run["status"] == "completed", run
    writer = run["steps"][1]
    assert "".join(d["text"] for d in deltas(frames)) == writer["output"]
    assert {d["step_id"] for d in deltas(frames)} == {writer["id"]}

    # Replayed later: the log, without a single delta.
    frames = await collect(wire, run_id)
    assert deltas(frames) == []
    assert durable(frames) == await events_of(wire, run_id)
    events = await events_of(wire, run_id)
    assert all(e["type"] != "step.delta" for e in events)
