"""The remote commands against the real app: workflows, run (live progress, prompts at pauses,
--json, --no-wait), runs, exit codes and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply, tool_call

FAST = ("--interval", "0.01")

WORKFLOW = {
    "name": "Brief writer",
    "description": "Plans, then writes",
    "model": "fake/test",
    "crew": [
        {"role": "planner", "systemPrompt": "Plan it."},
        {"role": "writer", "systemPrompt": "Write it.", "model": "fake/writer"},
    ],
}
ASKER = {
    "name": "Asker",
    "model": "fake/test",
    "crew": [{"role": "writer", "systemPrompt": "Ask, then write."}],
    "human_in_the_loop": {"ask_questions": True},
}
APPROVER = {
    "name": "CRM writer",
    "model": "fake/test",
    "crew": [{"role": "closer", "systemPrompt": "Update the CRM.", "tools": ["crm_upsert"]}],
    "tools": [
        {
            "name": "crm_upsert",
            "description": "Create or update a CRM contact",
            "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
            "url": "http://127.0.0.1:9/upsert",
        }
    ],
    "human_in_the_loop": {"approve_tools": ["crm_upsert"]},
}


@pytest.fixture
def write(tmp_path: Path):
    def write(definition: dict, name: str = "workflow.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(definition))
        return str(path)

    return write


async def create(invoke, write, definition: dict) -> str:
    outcome = await invoke("workflows", "create", "-f", write(definition), "--json")
    assert outcome.exit_code == 0, outcome.stderr
    return outcome.json()["id"]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --- workflows --------------------------------------------------------------------------------


async def test_workflows_create_list_show(invoke, write):
    created = await invoke("workflows", "create", "-f", write(WORKFLOW))
    assert created.exit_code == 0, created.stderr
    assert created.stdout.startswith("Created workflow ") and "(Brief writer)" in created.stdout
    workflow_id = created.stdout.split()[2]
    assert f"loopllama run {workflow_id}" in created.stderr

    listed = await invoke("workflows", "list")
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "MODEL", "AGENTS", "UPDATED"]
    assert row.startswith(workflow_id) and "Brief writer" in row and "active" in row

    shown = await invoke("workflows", "show", workflow_id)
    assert shown.exit_code == 0
    assert "Brief writer" in shown.stdout and "1. planner" in shown.stdout
    assert "2. writer  [fake/writer]" in shown.stdout and "Plans, then writes" in shown.stdout

    as_json = await invoke("workflows", "show", workflow_id, "--json")
    data = as_json.json()
    assert data["id"] == workflow_id and data["crew"][1]["systemPrompt"] == "Write it."
    assert [w["id"] for w in (await invoke("workflows", "list", "--json")).json()] == [workflow_id]


async def test_workflows_list_pages(invoke, write):
    ids = []
    for name in ("One", "Two", "Three"):
        created = await invoke("workflows", "create", "-f", write({**WORKFLOW, "name": name}))
        ids.append(created.stdout.split()[2])
    page = await invoke("workflows", "list", "--limit", "2")
    assert page.exit_code == 0, page.stderr
    assert [line.split()[0] for line in page.stdout.splitlines()[1:]] == [ids[2], ids[1]]
    assert f"--after {ids[1]}" in page.stderr
    rest = await invoke("workflows", "list", "--limit", "2", "--after", ids[1], "--json")
    assert [w["id"] for w in rest.json()] == [ids[0]] and "--after" not in rest.stderr
    assert (await invoke("workflows", "list", "--limit", "0")).exit_code == 2


async def test_workflows_create_from_yaml(invoke, tmp_path):
    path = tmp_path / "workflow.yaml"
    path.write_text(
        "name: From YAML\nmodel: fake/test\ncrew:\n"
        "  - role: writer\n    systemPrompt: Write it.\n"
        "human_in_the_loop:\n  ask_questions: true\n"
    )
    outcome = await invoke("workflows", "create", "-f", str(path), "--json")
    assert outcome.exit_code == 0, outcome.stderr
    data = outcome.json()
    assert data["name"] == "From YAML" and data["human_in_the_loop"]["ask_questions"] is True


async def test_workflows_create_with_a_bad_file_is_a_usage_error(invoke, write, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    for path in (str(broken), str(tmp_path / "missing.json"), write({"model": "fake/test"})):
        outcome = await invoke("workflows", "create", "-f", path)
        assert outcome.exit_code == 2, outcome.stderr
    invalid = await invoke("workflows", "create", "-f", write({"name": ""}))
    assert invalid.exit_code == 3
    assert one_line(invalid.stderr) == (
        "Error: String must contain at least 1 character(s) (HTTP 400); fix the request and retry."
    )


WRONG_SHAPES = [
    ("crew: writer\n", "Expected array, received string"),
    ("crew:\n  role: w\n  systemPrompt: p\n", "Expected array, received object"),
    ("crew: [writer]\n", "Expected object, received string"),
    ("tools: [send_email]\n", "Expected object, received string"),
    ("human_in_the_loop: yes\n", "Expected object, received boolean"),
]


@pytest.mark.parametrize(("fields", "message"), WRONG_SHAPES)
async def test_wrong_shaped_yaml_is_the_apis_one_line_400(invoke, tmp_path, fields, message):
    path = tmp_path / "workflow.yaml"
    path.write_text("name: Shapes\nmodel: fake/test\n" + fields)
    outcome = await invoke("workflows", "create", "-f", str(path))
    assert outcome.exit_code == 3, outcome.stderr
    line = one_line(outcome.stderr)
    assert line.startswith("Error: ") and message in line and "(HTTP 400)" in line


async def test_wrong_shaped_update_is_the_apis_one_line_400(invoke, write, tmp_path):
    workflow_id = await create(invoke, write, WORKFLOW)
    path = tmp_path / "change.yaml"
    path.write_text("crew: writer\n")
    outcome = await invoke("workflows", "update", workflow_id, "-f", str(path))
    assert outcome.exit_code == 3
    assert "Expected array, received string (HTTP 400)" in one_line(outcome.stderr)


async def test_files_the_cli_cannot_read_exit_2_with_one_line(invoke, tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\x00 broken")
    dated = tmp_path / "dated.yaml"
    dated.write_text("name: Dated\ndescription: 2024-01-01\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- name: one\n")
    for path, said in (
        (binary, "not UTF-8 text"),
        (dated, "JSON cannot carry"),
        (listed, "must hold one object"),
        (tmp_path, "cannot read"),  # a directory
        (tmp_path / "missing.yaml", "cannot read"),
    ):
        outcome = await invoke("workflows", "create", "-f", str(path))
        assert outcome.exit_code == 2, (path, outcome.stderr)
        assert said in outcome.stderr and "Traceback" not in outcome.stderr


async def test_workflows_pause_activate_update_delete(invoke, write):
    workflow_id = await create(invoke, write, WORKFLOW)
    paused = await invoke("workflows", "pause", workflow_id)
    assert (paused.exit_code, paused.stdout) == (0, f"Workflow {workflow_id} is paused.\n")
    refused = await invoke("run", workflow_id, "Draft.")
    assert refused.exit_code == 3
    assert one_line(refused.stderr) == (
        "Error: Workflow is paused (HTTP 409); reactivate it with "
        f"`loopllama workflows activate {workflow_id}`, then retry."
    )
    activated = await invoke("workflows", "activate", workflow_id, "--json")
    assert activated.json()["status"] == "active"

    updated = await invoke("workflows", "update", workflow_id, "-f", write({"name": "Renamed"}))
    assert updated.exit_code == 0 and "Renamed" in updated.stdout

    kept = await invoke("workflows", "delete", workflow_id, input="n\n")
    assert kept.exit_code == 2 and "--yes" in kept.stderr
    deleted = await invoke("workflows", "delete", workflow_id, "--yes")
    assert (deleted.exit_code, deleted.stdout) == (0, f"Deleted workflow {workflow_id}.\n")
    gone = await invoke("workflows", "show", workflow_id)
    assert gone.exit_code == 3 and one_line(gone.stderr).startswith("Error: Not found (HTTP 404);")


# --- run --------------------------------------------------------------------------------------


async def test_run_follows_each_agent_and_prints_the_output(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, WORKFLOW)
    fake_provider.enqueue(reply("1. Define flags", 180, 120), reply("Feature flags...", 232, 166))
    outcome = await invoke("run", workflow_id, "Draft a brief.", *FAST)
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == "Feature flags...\n"  # stdout: the output alone
    lines = outcome.stderr.splitlines()
    assert lines[0].startswith("Run ") and lines[0].endswith(f"queued on workflow {workflow_id}.")
    assert lines[1:5] == [
        "▸ planner (fake/test) started",
        lines[2],
        "▸ writer (fake/writer) started",
        lines[4],
    ]
    assert lines[2].startswith("✓ planner (fake/test) finished in ")
    assert lines[2].endswith("· 180 in / 120 out tokens")
    assert lines[4].endswith("· 232 in / 166 out tokens")
    assert lines[5].startswith("✓ Run ") and "completed" in lines[5]
    assert "2 steps · 412 in / 286 out tokens" in lines[5]
    assert "\r" not in outcome.stderr  # no spinner outside a terminal


async def test_run_json_prints_the_finished_run(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, WORKFLOW)
    outcome = await invoke("run", workflow_id, "Draft.", "--json", *FAST)
    assert (outcome.exit_code, outcome.stderr) == (0, "")
    run = outcome.json()
    assert run["status"] == "completed" and run["workflow_id"] == workflow_id
    assert [s["role"] for s in run["steps"]] == ["planner", "writer"]
    assert run["output"].startswith("echo: ")


async def test_run_no_wait_prints_the_run_id(invoke, write):
    workflow_id = await create(invoke, write, WORKFLOW)
    outcome = await invoke("run", workflow_id, "Draft.", "--no-wait")
    assert outcome.exit_code == 0
    run_id = outcome.stdout.strip()
    shown = await invoke("runs", "show", run_id, "--json")
    assert shown.json()["id"] == run_id and shown.json()["input"] == "Draft."
    queued = await invoke("run", workflow_id, "Again.", "--no-wait", "--json")
    assert queued.json()["status"] == "queued"


async def test_runs_show_prints_each_steps_output_once(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, WORKFLOW)
    fake_provider.enqueue(reply("1. Define flags\n2. Ship", 180, 120), reply("Flags help.", 232, 1))
    outcome = await invoke("run", workflow_id, "Draft a brief.", *FAST)
    assert outcome.exit_code == 0, outcome.stderr
    run_id = (await invoke("runs", "list", workflow_id, "--json")).json()[0]["id"]

    shown = await invoke("runs", "show", run_id)
    assert shown.exit_code == 0
    text = shown.stdout
    assert "1. planner" in text and "       1. Define flags\n       2. Ship\n" in text
    assert text.count("Flags help.") == 1 and text.rstrip().endswith("Flags help.")

    brief = await invoke("runs", "show", run_id, "--no-steps")
    assert "Define flags" not in brief.stdout and brief.stdout.count("Flags help.") == 1


async def test_a_failed_run_exits_1(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, WORKFLOW)
    fake_provider.enqueue(ProviderStatusError(400, "prompt is too long"))
    outcome = await invoke("run", workflow_id, "Draft.", *FAST)
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert "✗ planner (fake/test) failed after" in outcome.stderr
    last = outcome.stderr.splitlines()[-1]
    assert last.startswith("✗ Run ") and " failed after " in last
    reason = "model provider returned 400: prompt is too long"
    assert last.endswith(": Step 1 (planner) failed: " + reason)
    as_json = await invoke("run", workflow_id, "Draft.", "--json", *FAST)
    assert as_json.exit_code == 0  # the fake echoes now: completed


async def test_a_question_is_answered_at_the_prompt(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, ASKER)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Which tone?"}), reply("Warm draft."))
    outcome = await invoke("run", workflow_id, "Draft.", *FAST, input="Warm.\n")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == "Warm draft.\n"
    assert "? writer asks: Which tone?" in outcome.stderr
    assert "Your answer: " in outcome.stderr
    results = [p.content for m in fake_provider.requests[-1].messages for p in m.parts
               if p.type == "tool_result"]  # fmt: skip
    assert results == ["Warm."]


async def test_an_approval_is_rejected_with_a_reason_at_the_prompt(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, APPROVER)
    fake_provider.enqueue(tool_call("crm_upsert", {"email": "ada@example.com"}), reply("Skipped."))
    outcome = await invoke("run", workflow_id, "Add Ada.", *FAST, input="maybe\nr\nNot yet.\n")
    assert outcome.exit_code == 0, outcome.stderr
    assert "! closer wants to run crm_upsert:" in outcome.stderr
    assert '"email": "ada@example.com"' in outcome.stderr
    assert "type a (approve) or r (reject)" in outcome.stderr  # "maybe" is asked again
    results = [p.content for m in fake_provider.requests[-1].messages for p in m.parts
               if p.type == "tool_result"]  # fmt: skip
    assert len(results) == 1 and "Not yet." in results[0]


async def test_an_approval_is_approved_at_the_prompt(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, APPROVER)
    fake_provider.enqueue(tool_call("crm_upsert", {"email": "ada@example.com"}), reply("Done."))
    outcome = await invoke("run", workflow_id, "Add Ada.", "--interval", "0.01", input="a\n")
    assert outcome.exit_code == 0, outcome.stderr
    run_id = outcome.stderr.split()[1]
    run = (await invoke("runs", "show", run_id, "--json")).json()
    (call,) = run["steps"][0]["tool_calls"]
    assert call["name"] == "crm_upsert" and call["status"] == "finished"  # it ran


async def test_no_answer_at_the_prompt_leaves_the_run_waiting(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, ASKER)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Which tone?"}))
    outcome = await invoke("run", workflow_id, "Draft.", *FAST, input="")
    assert outcome.exit_code == 4
    assert "answer it later with `loopllama runs respond" in outcome.stderr


async def test_run_json_never_prompts_and_runs_respond_finishes(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, ASKER)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Which tone?"}), reply("Final."))
    paused = await invoke("run", workflow_id, "Draft.", "--json", *FAST, input="ignored\n")
    assert paused.exit_code == 4 and paused.stderr == ""
    run = paused.json()
    assert run["status"] == "waiting_input"
    assert run["pending"] == {"kind": "input", "prompt": "Which tone?"}

    shown = await invoke("runs", "show", run["id"])
    assert "? writer asks: Which tone?" in shown.stdout
    assert f"loopllama runs respond {run['id']}" in shown.stdout

    answered = await invoke(
        "runs", "respond", run["id"], "--answer", "Warm.", "--follow", "--json", *FAST
    )
    assert answered.exit_code == 0, answered.stderr
    assert answered.json()["output"] == "Final."

    again = await invoke("runs", "respond", run["id"], "--answer", "Again.")
    assert again.exit_code == 3
    assert one_line(again.stderr) == (
        "Error: Run is not waiting for input (HTTP 409); see where the run stands with "
        f"`loopllama runs show {run['id']}`."
    )


async def test_runs_respond_asks_when_no_answer_is_given(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, APPROVER)
    fake_provider.enqueue(tool_call("crm_upsert", {"email": "a@b.co"}), reply("Skipped."))
    run_id = (await invoke("run", workflow_id, "Add.", "--json", *FAST)).json()["id"]
    answered = await invoke("runs", "respond", run_id, input="reject\nNo CRM today.\n")
    assert answered.exit_code == 0, answered.stderr
    assert answered.stdout == f"Answer sent; run {run_id} is running.\n"
    followed = await invoke("runs", "follow", run_id, *FAST)
    assert followed.exit_code == 0 and followed.stdout == "Skipped.\n"
    nothing = await invoke("runs", "respond", run_id)
    assert nothing.exit_code == 3 and "not waiting for input" in nothing.stderr


async def test_runs_respond_flags_are_checked(invoke):
    for args in (
        ("--approve", "--reject"),
        ("--answer", "x", "--approve"),
        ("--approve", "--reason", "why"),
        ("--json",),
    ):
        outcome = await invoke("runs", "respond", "some-run", *args)
        assert outcome.exit_code == 2, (args, outcome.stderr)


async def test_runs_list_and_show(invoke, write, fake_provider):
    workflow_id = await create(invoke, write, WORKFLOW)
    empty = await invoke("runs", "list", workflow_id)
    assert empty.exit_code == 0 and "No runs yet" in empty.stderr
    fake_provider.enqueue(reply("Plan.", 3, 2), reply("Brief.", 4, 1))
    run_id = (await invoke("run", workflow_id, "Draft a brief.", "--json", *FAST)).json()["id"]
    listed = await invoke("runs", "list", workflow_id)
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "STEPS"]
    assert row.split()[:4] == [run_id, "completed", "2", "7/3"]
    assert [r["id"] for r in (await invoke("runs", "list", workflow_id, "--json")).json()] == [
        run_id
    ]
    shown = await invoke("runs", "show", run_id)
    assert shown.stdout.startswith(f"Run {run_id}  (workflow {workflow_id}): completed")
    assert "1. planner (fake/test)" in shown.stdout and shown.stdout.endswith("Brief.\n")


# --- exit codes for setup and connection problems ---------------------------------------------


async def test_no_api_key_is_a_one_line_usage_error(invoke):
    outcome = await invoke("workflows", "list", key=None)
    assert outcome.exit_code == 2
    assert one_line(outcome.stderr).startswith("Error: no API key: set LOOPLLAMA_API_KEY")


async def test_a_wrong_api_key_exits_3(invoke):
    outcome = await invoke("workflows", "list", key="ll_live_wrong")
    assert outcome.exit_code == 3
    assert one_line(outcome.stderr).startswith("Error: Invalid API key (HTTP 401); set LOOPLLAMA")


async def test_no_server_exits_3(invoke):
    outcome = await invoke("runs", "list", "w1", base_url="http://127.0.0.1:9", in_process=False)
    assert outcome.exit_code == 3
    assert one_line(outcome.stderr) == (
        "Error: cannot reach LoopLlama at http://127.0.0.1:9; start it with `loopllama serve`, "
        "or point LOOPLLAMA_BASE_URL (or --base-url) at your server."
    )


async def test_usage_errors_exit_2(invoke):
    assert (await invoke("run")).exit_code == 2
    assert (await invoke("run", "w1", "x", "--interval", "fast")).exit_code == 2
    assert (await invoke("workflows", "create")).exit_code == 2


async def test_yaml_without_pyyaml_says_what_to_do(invoke, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # as in a plain `pip install loopllama`
    path = tmp_path / "workflow.yaml"
    path.write_text("name: From YAML\n")
    outcome = await invoke("workflows", "create", "-f", str(path))
    assert outcome.exit_code == 2
    assert "pip install pyyaml" in outcome.stderr
