"""Run control and versions through the SDK: `AsyncLoopLlama` on the app in process (both
databases), and `LoopLlama` (sync) against a real `loopllama serve`."""

from __future__ import annotations

import pytest

from loopllama import ConflictError, LoopLlama, NotFoundError, PermissionDeniedError
from loopllama.client.types import RunList, WorkflowVersion
from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply
from tests.fakes.provider_server import hang

CREW = [
    {"role": "planner", "systemPrompt": "Plan."},
    {"role": "writer", "systemPrompt": "Write."},
]


async def test_async_cancel_retry_fork_and_lists(sdk, fake_provider):
    workflow = await sdk.workflows.create(name="w", model="fake/test", crew=CREW)
    fake_provider.enqueue(reply("plan"), ProviderStatusError(400, "too long"))
    failed = await sdk.runs.poll((await sdk.runs.create(workflow.id, "x")).id, interval=0.01)
    assert failed.status == "failed" and failed.is_done

    retry = await sdk.runs.retry(failed.id)
    assert retry.forked_from == {"run_id": failed.id, "from_step": 1}
    done = await sdk.runs.poll(retry.id, interval=0.01)
    assert done.status == "completed"
    assert [s.forked for s in done.steps] == [True, False]

    fork = await sdk.runs.fork(done.id, from_step=1, input="y", use_current_workflow=True)
    assert (fork.input, fork.workflow_version) == ("y", 1)
    await sdk.runs.poll(fork.id, interval=0.01)
    with pytest.raises(ConflictError, match="Run has already finished"):
        await sdk.runs.cancel(fork.id)
    with pytest.raises(ConflictError, match="Run is not failed or cancelled"):
        await sdk.runs.retry(fork.id)

    page = await sdk.runs.list(limit=2)
    assert isinstance(page, RunList) and page.has_more and len(page) == 2
    rest = await sdk.runs.list(after=page[-1].id)
    assert [r.id for r in [*page, *rest]] == [fork.id, retry.id, failed.id]
    assert [r.id for r in await sdk.runs.list(workflow.id, status="failed")] == [failed.id]


async def test_async_versions_and_locks(sdk):
    workflow = await sdk.workflows.create(name="w", model="fake/test", crew=CREW)
    assert (workflow.version, workflow.locked) == (1, False)
    await sdk.workflows.update(workflow.id, crew=CREW[:1])
    versions = await sdk.workflows.versions(workflow.id)
    assert [v.version for v in versions] == [2, 1]
    assert isinstance(versions[0], WorkflowVersion) and len(versions[0].crew) == 1
    assert len((await sdk.workflows.version(workflow.id, 1)).crew) == 2
    with pytest.raises(NotFoundError, match="Version not found"):
        await sdk.workflows.version(workflow.id, 9)
    assert (await sdk.workflows.lock(workflow.id)).locked is True
    with pytest.raises(PermissionDeniedError, match="Workflow is locked"):
        await sdk.workflows.restore(workflow.id, 1)
    await sdk.workflows.unlock(workflow.id)
    restored = await sdk.workflows.restore(workflow.id, 1)
    assert (restored.version, len(restored.crew)) == (3, 2)
    pinned = await sdk.runs.create(workflow.id, "x", version=2)
    assert pinned.workflow_version == 2


def test_sync_cancel_of_a_hanging_run(live_server, provider_server):
    provider_server.enqueue(hang(60))
    with LoopLlama(api_key=live_server.api_key, base_url=live_server.url, timeout=10) as sdk:
        workflow = sdk.workflows.create(name="hangs", crew=CREW[:1])
        run = sdk.runs.create(workflow.id, "x", idempotency_key="once")
        assert sdk.runs.create(workflow.id, "x", idempotency_key="once").id == run.id
        provider_server.wait_for_requests(1, timeout=30)
        cancelled = sdk.runs.cancel(run.id)
        assert cancelled.status == "cancelled" and cancelled.is_done
        provider_server.wait_for_disconnects(1, timeout=10)
        retried = sdk.runs.retry(run.id)
        assert retried.forked_from == {"run_id": run.id, "from_step": 0}
        assert [r.id for r in sdk.runs.list()] == [retried.id, run.id]
        assert sdk.workflows.lock(workflow.id).locked
        with pytest.raises(PermissionDeniedError):
            sdk.workflows.delete(workflow.id)
