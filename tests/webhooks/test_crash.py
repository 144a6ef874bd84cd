"""Nothing is lost to a crash: SIGKILL the server that owns a pending delivery, start it again,
and the delivery still arrives (same webhook-id, signed)."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.provider_server import text
from tests.helpers import LiveServer, wait_for_run
from tests.webhooks.support import create_endpoint, wait_deliveries

pytestmark = pytest.mark.slow


@pytest.fixture
def live_server(tmp_path, provider_server):
    server = LiveServer(
        tmp_path,
        provider_server,
        LOOPLLAMA_HTTP_TOOL_ALLOW="127.0.0.1",
        LOOPLLAMA_WEBHOOK_RETRY_SCHEDULE="2,2",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_sigkill_with_a_pending_delivery_then_restart_delivers(
    live_server, provider_server, hook
):
    hook.fail_first = 1  # the first attempt fails: the delivery waits for its retry
    provider_server.enqueue(text("the text", 3, 2))
    async with live_server.client() as http:
        endpoint = await create_endpoint(http, hook, events=["run.completed"])
        body = {"name": "w", "model": "claude-test", "crew": [{"role": "a", "systemPrompt": "b"}]}
        workflow = (await http.post("/v1/workflows", json=body)).json()["data"]
        run = (await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})).json()
        await wait_for_run(http, run["data"]["id"], ("completed",))
        [first] = await hook.wait_for(1)

    live_server.kill()  # before the retry, due two seconds after the failure
    await asyncio.sleep(2.5)  # the retry comes due while nobody is there to send it
    assert len(hook.received) == 1
    await asyncio.to_thread(live_server.start)

    _, second = await hook.wait_for(2)
    assert second.id == first.id and second.body == first.body
    assert all(r.verified_with == endpoint["secret"] for r in hook.verified())
    async with live_server.client() as http:
        [delivery] = await wait_deliveries(
            http, endpoint["id"], lambda ds: ds and ds[0]["status"] == "succeeded"
        )
    assert delivery["attempts"] == 2 and delivery["id"] == first.id
