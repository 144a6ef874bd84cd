"""The SDK's `runs.stream` and `runs.events` (sync and async) against the app on a real
loopback server; the stream survives a dropped connection without losing or repeating an
event."""

from __future__ import annotations

import asyncio

import pytest

from loopllama import AsyncLoopLlama, LoopLlama, NotFoundError
from loopllama.client import RunEvent, StepDelta
from loopllama.providers.fake import reply
from tests.events.support import CuttingProxy, serve
from tests.helpers import wait_for_run

CREW = [{"role": r, "systemPrompt": f"{r}."} for r in ("planner", "writer", "editor")]


def _gated(text: str, gate: asyncio.Event):
    async def answer(_request):
        await gate.wait()
        return reply(text)

    return answer


@pytest.fixture
async def live_url(app):
    async with serve(app) as url:
        yield url


async def _workflow(sdk) -> str:
    workflow = await sdk.workflows.create(name="stream", model="fake/test", crew=CREW)
    return workflow.id


async def test_stream_yields_typed_events_and_deltas(live_url, api_key, fake_provider):
    fake_provider.enqueue(reply("one two"), reply("three four"), reply("five six"))
    async with AsyncLoopLlama(api_key=api_key, base_url=live_url) as sdk:
        run = await sdk.runs.create(await _workflow(sdk), "go")
        seen = [event async for event in sdk.runs.stream(run.id)]
        final = await sdk.runs.retrieve(run.id)
        log = await sdk.runs.events(run.id, page_size=2)  # five pages

    durable = [e for e in seen if isinstance(e, RunEvent)]
    assert [e.to_dict() for e in durable] == [e.to_dict() for e in log]
    assert [e.id for e in log] == list(range(1, 10))
    assert durable[-1].type == "run.completed" and durable[-1].is_terminal
    assert durable[-1].run.output == final.output == "five six"
    assert durable[3].step.output == "one two"
    for event in seen:
        if isinstance(event, StepDelta):
            assert event.type == "step.delta" and event.step_id and event.text
    # A stream opened after the end carries no deltas (they are not stored).
    assert (await sdk_events_after(live_url, api_key, run.id, 7)) == [8, 9]


async def sdk_events_after(url: str, key: str, run_id: str, after: int) -> list[int]:
    async with AsyncLoopLlama(api_key=key, base_url=url) as sdk:
        return [e.id async for e in sdk.runs.stream(run_id, after=after)]


async def test_stream_reconnects_after_a_drop_without_loss_or_repeat(
    app, live_url, api_key, fake_provider
):
    gates = [asyncio.Event() for _ in CREW]
    fake_provider.enqueue(*(_gated(f"output {i}", gate) for i, gate in enumerate(gates)))
    port = int(live_url.rsplit(":", 1)[1])
    async with (
        CuttingProxy(("127.0.0.1", port)) as proxy,
        AsyncLoopLlama(api_key=api_key, base_url=proxy.url) as sdk,
    ):
        run = await sdk.runs.create(await _workflow(sdk), "go")
        received: list[RunEvent] = []
        cut_after: int | None = None
        async for event in sdk.runs.stream(run.id):
            if not isinstance(event, RunEvent):
                continue
            received.append(event)
            if event.type == "step.started":
                order = event.step.order
                if order == 1 and cut_after is None:
                    cut_after = event.id
                    proxy.cut()  # mid-run; the writer's answer comes while we are away
                gates[order].set()
        final = await sdk.runs.retrieve(run.id)

    assert final.status == "completed"
    assert [e.id for e in received] == list(range(1, received[-1].id + 1))
    assert received[-1].type == "run.completed"
    streams = [h for h in proxy.heads if "/stream" in h.split("\r\n")[0]]
    assert len(streams) >= 2
    assert f"last-event-id: {cut_after}" in streams[1].lower()


async def test_sync_stream_and_events(app, live_url, api_key, fake_provider):
    async with AsyncLoopLlama(api_key=api_key, base_url=live_url) as sdk:
        run = await sdk.runs.create(await _workflow(sdk), "go")
    http_probe = await _wait(live_url, api_key, run.id)

    def follow() -> tuple[list, list]:
        with LoopLlama(api_key=api_key, base_url=live_url) as client:
            streamed = list(client.runs.stream(run.id))
            return streamed, client.runs.events(run.id, after=2)

    streamed, tail = await asyncio.to_thread(follow)
    assert [e.id for e in streamed] == list(range(1, 10))
    assert [e.id for e in tail] == list(range(3, 10))
    assert streamed[-1].run.status == http_probe


async def _wait(url, key, run_id):
    import httpx

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
        return (await wait_for_run(c, run_id))["status"]


async def test_stream_of_an_unknown_run_raises_not_found(live_url, api_key):
    async with AsyncLoopLlama(api_key=api_key, base_url=live_url) as sdk:
        with pytest.raises(NotFoundError):
            async for _ in sdk.runs.stream("nope"):
                pass
        with pytest.raises(NotFoundError):
            await sdk.runs.events("nope")
