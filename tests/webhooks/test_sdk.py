"""`client.webhooks.*` (async on the app in process, sync against a real `loopllama serve`)
and `loopllama.webhooks.verify` for receivers, which needs nothing of the server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from loopllama import AsyncLoopLlama, BadRequestError, LoopLlama, NotFoundError
from loopllama.client.types import WebhookDelivery, WebhookEndpoint
from loopllama.providers.fake import reply
from loopllama.webhooks import WebhookVerificationError, verify
from loopllama.webhooks.signing import headers as sign
from loopllama.webhooks.signing import new_secret
from tests.client.support import BASE_URL, FlakyTransport
from tests.fakes.provider_server import text
from tests.helpers import LiveServer


async def test_async_sdk_covers_every_webhook_route(app, api_key, fake_provider, hook):
    async with AsyncLoopLlama(
        api_key=api_key, base_url=BASE_URL, transport=FlakyTransport(app)
    ) as sdk:
        endpoint = await sdk.webhooks.create(
            url=hook.url, events=["run.completed"], description="ops"
        )
        assert isinstance(endpoint, WebhookEndpoint) and endpoint.secret.startswith("whsec_")
        assert "whsec_" not in repr(endpoint)
        hook.secrets.append(endpoint.secret)
        [listed] = await sdk.webhooks.list()
        assert listed.id == endpoint.id and listed.secret is None
        assert (await sdk.webhooks.retrieve(endpoint.id)).description == "ops"
        updated = await sdk.webhooks.update(endpoint.id, description=None, events=["run.failed"])
        assert updated.description is None and updated.events == ["run.failed"]
        await sdk.webhooks.update(endpoint.id, events=["run.completed"])

        workflow = await sdk.workflows.create(name="w", model="fake/t")
        fake_provider.enqueue(reply("a", 1, 1), reply("b", 1, 1))
        await sdk.runs.create_and_poll(workflow.id, "go", interval=0.01)
        [first] = await hook.wait_for(1)
        deliveries = await _deliveries_until(sdk, endpoint.id, "succeeded")
        assert isinstance(deliveries[0], WebhookDelivery) and deliveries[0].id == first.id

        rotated = await sdk.webhooks.rotate_secret(endpoint.id)
        hook.secrets.append(rotated.secret)
        again = await sdk.webhooks.redeliver(endpoint.id, first.id)
        assert again.status == "pending"
        _, second = await hook.wait_for(2)
        assert second.id == first.id and second.verified_with == rotated.secret

        with pytest.raises(BadRequestError, match="Array must contain at least 1"):
            await sdk.webhooks.create(url=hook.url, events=[])
        await sdk.webhooks.delete(endpoint.id)
        with pytest.raises(NotFoundError):
            await sdk.webhooks.retrieve(endpoint.id)


async def _deliveries_until(sdk, endpoint_id, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = await sdk.webhooks.deliveries(endpoint_id)
        if found and all(d.status == status for d in found):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_sync_sdk_against_a_real_server(tmp_path, provider_server, hook):
    server = LiveServer(tmp_path, provider_server, LOOPLLAMA_HTTP_TOOL_ALLOW="127.0.0.1")
    await asyncio.to_thread(server.start)
    try:

        def use_the_sdk() -> tuple[WebhookEndpoint, list[WebhookDelivery]]:
            with LoopLlama(api_key=server.api_key, base_url=server.url, timeout=10) as sdk:
                endpoint = sdk.webhooks.create(url=hook.url, events=["run.completed"])
                hook.secrets.append(endpoint.secret)
                crew = [{"role": "a", "systemPrompt": "b"}]
                workflow = sdk.workflows.create(name="w", model="claude-test", crew=crew)
                provider_server.enqueue(text("done", 1, 1))
                sdk.runs.create_and_poll(workflow.id, "go", interval=0.05)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    found = sdk.webhooks.deliveries(endpoint.id)
                    if found and found[0].status == "succeeded":
                        break
                    time.sleep(0.05)
                redelivered = sdk.webhooks.redeliver(endpoint.id, found[0].id)
                assert redelivered.id == found[0].id
                assert sdk.webhooks.retrieve(endpoint.id).secret is None
                assert sdk.webhooks.rotate_secret(endpoint.id).secret.startswith("whsec_")
                assert [e.id for e in sdk.webhooks.list()] == [endpoint.id]
                sdk.webhooks.update(endpoint.id, status="disabled")
                sdk.webhooks.delete(endpoint.id)
                return endpoint, found

        endpoint, found = await asyncio.to_thread(use_the_sdk)
        assert found[0].status == "succeeded" and found[0].event_type == "run.completed"
        received = await hook.wait_for(2)
        assert {r.id for r in received} == {found[0].id}
        assert received[0].verified_with == endpoint.secret
    finally:
        await asyncio.to_thread(server.stop)


def test_verify_accepts_our_signatures_and_refuses_tampering():
    secret = new_secret()
    body = '{"type":"run.completed","timestamp":"2026-12-01T00:00:00.000Z","data":{}}'
    headers = sign(secret, "cabc", body)
    assert verify(body, headers, secret) == {
        "type": "run.completed",
        "timestamp": "2026-12-01T00:00:00.000Z",
        "data": {},
    }
    upper = {k.upper(): v for k, v in headers.items()}  # header names in any case
    assert verify(body.encode(), upper, secret)["type"] == "run.completed"
    with pytest.raises(WebhookVerificationError):
        verify(body.replace("completed", "failed"), headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, new_secret())
    with pytest.raises(WebhookVerificationError):
        verify(body, {**headers, "webhook-id": "other"}, secret)
    with pytest.raises(WebhookVerificationError, match="Missing required headers"):
        verify(body, {}, secret)
    old = sign(secret, "cabc", body, now=_minutes_ago(10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(body, old, secret)


def _minutes_ago(minutes: int):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_verify_imports_no_server_code():
    code = (
        "import sys; from loopllama.webhooks import verify;"
        "heavy = {'fastapi', 'sqlalchemy', 'pydantic', 'procrastinate', 'httpcore'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
