"""`loopllama usage` (a table per day, workflow and model; --json) and `loopllama keys create
--rate-limit` / `keys list`."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import LiveServer, wait_for_run


async def test_usage_prints_a_table_and_json(invoke, client):
    created = await client.post(
        "/v1/workflows",
        json={"name": "u", "model": "fake/test", "crew": [{"role": "a", "systemPrompt": "A."}]},
    )
    workflow_id = created.json()["data"]["id"]
    run = await client.post(f"/v1/workflows/{workflow_id}/runs", json={"input": "hello"})
    finished = await wait_for_run(client, run.json()["data"]["id"])

    table = await invoke("usage")
    assert table.exit_code == 0, table.stderr
    header, row, total = table.stdout.strip().splitlines()
    assert header.split() == [
        "DATE",
        "WORKFLOW",
        "MODEL",
        "RUNS",
        "TOKENS",
        "IN",
        "TOKENS",
        "OUT",
        "COST",
    ]
    assert row.split()[1:4] == [workflow_id, "fake/test", "1"]
    assert row.split()[-1] == "-"  # no price known for a fake model
    assert total.startswith("TOTAL")

    as_json = await invoke("usage", "--json")
    assert as_json.json() == [
        {
            "date": finished["created_at"][:10],
            "workflow_id": workflow_id,
            "model": "fake/test",
            "runs": 1,
            "tokens_in": finished["tokens_in"],
            "tokens_out": finished["tokens_out"],
            "cost_usd": None,
        }
    ]

    bad = await invoke("usage", "--start", "last week")
    assert bad.exit_code != 0
    assert "Invalid start: expected a date as YYYY-MM-DD" in bad.stderr


async def test_empty_usage_says_so(invoke):
    outcome = await invoke("usage", "--start", "2026-01-01", "--end", "2026-01-31")
    assert outcome.exit_code == 0
    assert "No usage in that period." in outcome.stdout + outcome.stderr


def test_keys_create_with_its_own_rate_limit(tmp_path, provider_server):
    server = LiveServer(tmp_path, provider_server)
    made = server.cli("keys", "create", "--account", "limited", "--rate-limit", "5/second")
    assert made.stdout.strip().splitlines()[-1].startswith("ll_live_")
    listed = server.cli("keys", "list").stdout
    line = next(line for line in listed.splitlines() if " limited " in f" {line} ")
    assert " 5/second " in f" {line} "  # the RATE LIMIT column
    with pytest.raises(subprocess.CalledProcessError) as refused:
        server.cli("keys", "create", "--account", "x", "--rate-limit", "lots")
    assert refused.value.returncode == 2
    assert "expected N/second, N/minute or N/hour" in refused.value.stderr


def test_a_run_summary_shows_its_cost_when_known():
    from loopllama.cli.remote_output import run_summary
    from loopllama.client.types import Run

    priced = {"id": "r", "status": "completed", "total_steps": 1, "cost_usd": 0.0123}
    assert run_summary(Run.from_dict(priced)).endswith("· $0.0123")
    unknown = {**priced, "cost_usd": None}
    assert "$" not in run_summary(Run.from_dict(unknown))
