"""The CLI on the event stream: the agents' text as it is generated (`--stream-text`, on by
default in a terminal) between the usual step lines, and `runs events` printing the log."""

from __future__ import annotations

import asyncio

from loopllama.providers.fake import reply, tool_call
from tests.cli.test_remote import ASKER, WORKFLOW, create, write

__all__ = ["write"]


def when_watched(app, answer, streams: int = 1):
    """A scripted model call that answers once the run's stream has been opened `streams`
    times (the command opens it after triggering the run, and again after a pause)."""

    async def call(_request):
        async with asyncio.timeout(20):
            while app.state.services.hub.opened < streams:
                await asyncio.sleep(0.01)
        return answer

    return call


async def test_run_streams_the_agents_text_between_its_step_lines(
    app, invoke, write, fake_provider
):
    workflow_id = await create(invoke, write, WORKFLOW)
    fake_provider.enqueue(
        when_watched(app, reply("Plan: define flags.", 5, 4)), reply("Flags ship safely.", 6, 3)
    )
    outcome = await invoke("run", workflow_id, "Draft.", "--stream-text")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == "Flags ship safely.\n"  # stdout: the output alone, as always
    lines = outcome.stderr.splitlines()
    assert lines[1:7] == [
        "▸ planner (fake/test) started",
        "Plan: define flags.",
        lines[3],
        "▸ writer (fake/writer) started",
        "Flags ship safely.",
        lines[6],
    ]
    assert lines[3].startswith("✓ planner (fake/test) finished in ")
    assert lines[6].startswith("✓ writer (fake/writer) finished in ")


async def test_follow_streams_through_a_pause(app, invoke, write, fake_provider):
    workflow_id = await create(invoke, write, ASKER)
    fake_provider.enqueue(
        when_watched(app, tool_call("ask_human", {"question": "Tone?"}, text="Let me ask.")),
        when_watched(app, reply("Warm words."), streams=2),
    )
    started = await invoke("run", workflow_id, "Draft.", "--no-wait")
    run_id = started.stdout.strip()
    outcome = await invoke("runs", "follow", run_id, "--stream-text", input="Warm.\n")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == "Warm words.\n"
    assert "? writer asks: Tone?" in outcome.stderr
    text = outcome.stderr
    assert text.index("Let me ask.") < text.index("? writer asks") < text.index("Warm words.")


async def test_runs_events_prints_the_log(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, WORKFLOW)
    done = await invoke("run", workflow_id, "Draft.", "--json")
    run_id = done.json()["id"]

    table = await invoke("runs", "events", run_id)
    assert table.exit_code == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split() == ["ID", "AT", "TYPE", "DETAIL"]
    assert [row.split()[0] for row in rows[1:]] == [str(i) for i in range(1, 8)]
    assert "run.queued" in rows[1] and "run.completed" in rows[-1]
    assert "planner (fake/test)" in rows[4] and "step.completed" in rows[4]

    as_json = await invoke("runs", "events", run_id, "--after", "5", "--json")
    assert [e["id"] for e in as_json.json()] == [6, 7]
    assert as_json.json()[-1]["data"]["status"] == "completed"
    none = await invoke("runs", "events", run_id, "--after", "7")
    assert none.exit_code == 0 and "No events after 7." in none.stderr
    missing = await invoke("runs", "events", "nope")
    assert missing.exit_code == 3 and "Not found" in missing.stderr
