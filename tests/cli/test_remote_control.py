"""`runs cancel | retry | fork`, `runs list` across workflows, and `workflows versions |
restore | lock | unlock` against the real app; Ctrl-C during `loopllama run` in a pty."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys

from loopllama import LoopLlama
from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply, tool_call
from tests.cli.test_remote import ASKER, FAST, WORKFLOW, create, write  # noqa: F401
from tests.cli.test_terminal import Terminal
from tests.fakes.provider_server import hang


async def test_runs_cancel_retry_fork(invoke, write, fake_provider):  # noqa: F811
    asker = await create(invoke, write, ASKER)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}))
    paused = await invoke("run", asker, "Draft.", "--json", *FAST)
    run_id = paused.json()["id"]
    cancelled = await invoke("runs", "cancel", run_id)
    assert (cancelled.exit_code, cancelled.stdout) == (0, f"Run {run_id} is cancelled.\n")
    again = await invoke("runs", "cancel", run_id)
    assert again.exit_code == 3 and "Run has already finished" in again.stderr

    workflow_id = await create(invoke, write, WORKFLOW)
    fake_provider.enqueue(reply("Plan."), ProviderStatusError(400, "too long"))
    failed = (await invoke("run", workflow_id, "Draft.", "--json", *FAST)).json()
    assert failed["status"] == "failed"
    retried = await invoke("runs", "retry", failed["id"], "--json")
    assert retried.exit_code == 0, retried.stderr
    assert retried.json()["forked_from"] == {"run_id": failed["id"], "from_step": 1}
    plain = await invoke("runs", "retry", failed["id"])
    new_id = plain.stdout.strip()
    assert "Retry of run" in plain.stderr and f"runs follow {new_id}" in plain.stderr

    forked = await invoke(
        "runs", "fork", failed["id"], "--from-step", "1", "--input", "Other.", "--json"
    )
    assert forked.exit_code == 0, forked.stderr
    assert (forked.json()["input"], forked.json()["forked_from"]["from_step"]) == ("Other.", 1)
    bad = await invoke("runs", "fork", failed["id"], "--from-step", "2")
    assert bad.exit_code == 3 and "from_step must be less than 2" in bad.stderr
    assert (await invoke("runs", "fork", failed["id"])).exit_code == 2  # --from-step missing

    everything = await invoke("runs", "list", "--json")
    assert len(everything.json()) == 5
    failed_only = await invoke("runs", "list", "--status", "cancelled", "--json")
    assert [r["id"] for r in failed_only.json()] == [run_id]
    page = await invoke("runs", "list", "--limit", "2")
    assert "More: `loopllama runs list --after " in page.stderr


async def test_workflows_versions_restore_lock_unlock(invoke, write):  # noqa: F811
    workflow_id = await create(invoke, write, WORKFLOW)
    changed = {"crew": [{"role": "solo", "systemPrompt": "Alone."}]}
    updated = await invoke("workflows", "update", workflow_id, "-f", write(changed, "c.json"))
    assert updated.exit_code == 0, updated.stderr
    versions = await invoke("workflows", "versions", workflow_id)
    header, newest, oldest = versions.stdout.splitlines()
    assert header.split()[:3] == ["VERSION", "MODEL", "AGENTS"]
    assert newest.split()[:4] == ["2", "fake/test", "1", "solo"]
    assert oldest.split()[:3] == ["1", "fake/test", "2"]
    as_json = (await invoke("workflows", "versions", workflow_id, "--json")).json()
    assert [v["version"] for v in as_json] == [2, 1]

    locked = await invoke("workflows", "lock", workflow_id)
    assert locked.stdout == f"Workflow {workflow_id} is locked.\n"
    refused = await invoke("workflows", "restore", workflow_id, "1")
    assert refused.exit_code == 3 and "Workflow is locked" in refused.stderr
    assert (await invoke("workflows", "unlock", workflow_id)).exit_code == 0
    restored = await invoke("workflows", "restore", workflow_id, "1")
    assert restored.stdout == f"Restored version 1 of {workflow_id} as version 3.\n"
    shown = (await invoke("workflows", "show", workflow_id, "--json")).json()
    assert (shown["version"], shown["locked"], len(shown["crew"])) == (3, False, 2)


def test_ctrl_c_during_run_offers_to_cancel(live_server, provider_server):
    with LoopLlama(api_key=live_server.api_key, base_url=live_server.url) as sdk:
        workflow = sdk.workflows.create(
            name="Hangs", crew=[{"role": "writer", "systemPrompt": "Write."}]
        )
    provider_server.enqueue(hang(60))
    env = {
        **os.environ,
        "LOOPLLAMA_API_KEY": live_server.api_key,
        "LOOPLLAMA_BASE_URL": live_server.url,
    }
    controller, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "loopllama.cli", "run", workflow.id, "Draft.", "--interval", "0.2"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    terminal = Terminal(controller)
    try:
        terminal.expect("▸ writer (claude-sonnet-4-6) started")
        provider_server.wait_for_requests(1, timeout=30)  # the model call is in flight
        process.send_signal(signal.SIGINT)
        terminal.expect("Cancel run ")
        os.write(controller, b"y\n")
        code = terminal.drain(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert code == 130, terminal.text
    assert "is cancelled." in terminal.text
    provider_server.wait_for_disconnects(1, timeout=10)
    with LoopLlama(api_key=live_server.api_key, base_url=live_server.url) as sdk:
        (run,) = sdk.runs.list(workflow.id)
    assert run.status == "cancelled"
