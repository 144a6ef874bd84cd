"""`client.keys` (sync and async) on the real app: create, list, revoke, and the errors a
scoped key meets (PermissionDeniedError on 403)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from loopllama import (
    AsyncLoopLlama,
    AuthenticationError,
    ConflictError,
    LoopLlama,
    NotFoundError,
    PermissionDeniedError,
)
from loopllama.client import ApiKey
from tests.client.support import BASE_URL, BlockingTransport


async def test_async_keys_create_list_revoke(sdk: AsyncLoopLlama, transport):
    workflow = await sdk.workflows.create(name="w", model="fake/t")
    expires_at = datetime.now(UTC) + timedelta(days=7)
    created = await sdk.keys.create(
        label="dashboard", scope="read", workflow_ids=[workflow.id], expires_at=expires_at
    )
    assert isinstance(created, ApiKey) and created.key and created.key.startswith("ll_live_")
    assert (created.scope, created.workflow_ids, created.label) == (
        "read",
        [workflow.id],
        "dashboard",
    )
    assert abs(created.expires_at - expires_at) < timedelta(seconds=1)
    assert created.is_active and "key" in created.to_dict()

    listed = await sdk.keys.list()
    assert listed[0].id == created.id  # newest first
    assert all(k.key is None for k in listed)

    async with AsyncLoopLlama(api_key=created.key, base_url=BASE_URL, transport=transport) as dash:
        assert [w.id for w in await dash.workflows.list()] == [workflow.id]
        with pytest.raises(PermissionDeniedError) as denied:
            await dash.runs.create(workflow.id, "hi")
        assert (denied.value.status_code, denied.value.message) == (403, "Insufficient permissions")
        with pytest.raises(PermissionDeniedError):
            await dash.keys.list()
        await sdk.keys.revoke(created.id)
        with pytest.raises(AuthenticationError, match="Invalid API key"):
            await dash.workflows.list()
    revoked = next(k for k in await sdk.keys.list() if k.id == created.id)
    assert revoked.revoked_at is not None and not revoked.is_active


async def test_async_key_errors(sdk: AsyncLoopLlama):
    own = (await sdk.keys.list())[0]
    with pytest.raises(ConflictError, match="A key cannot revoke itself"):
        await sdk.keys.revoke(own.id)
    with pytest.raises(NotFoundError):
        await sdk.keys.revoke("nope")
    with pytest.raises(ValueError):
        await sdk.keys.revoke("")


async def test_sync_keys(app, api_key):
    transport = BlockingTransport(httpx.ASGITransport(app=app), asyncio.get_running_loop())

    def scenario() -> None:
        with LoopLlama(api_key=api_key, base_url=BASE_URL, transport=transport) as client:
            created = client.keys.create(scope="run", expires_at="2099-01-01T00:00:00Z")
            assert created.scope == "run" and created.expires_at.year == 2099
            assert created.id in {k.id for k in client.keys.list()}
            narrow = LoopLlama(api_key=created.key, base_url=BASE_URL, transport=transport)
            with narrow, pytest.raises(PermissionDeniedError):
                narrow.keys.create(scope="read")
            client.keys.revoke(created.id)
            client.keys.revoke(created.id)  # again: nothing changes, no error

    await asyncio.to_thread(scenario)
