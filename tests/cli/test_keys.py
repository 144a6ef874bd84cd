"""`loopllama keys`: in the server's database (with --account, or without an API key), and
over the keys API (with an API key and a base URL)."""

from __future__ import annotations

import pytest

from tests.api.keys_support import make_key

LOCAL = {"key": None, "base_url": None, "in_process": False}


@pytest.fixture(autouse=True)
def _server_database(monkeypatch, settings):
    monkeypatch.setenv("LOOPLLAMA_DATABASE_URL", settings.database.url)


async def new_workflow(client) -> str:
    response = await client.post("/v1/workflows", json={"name": "w", "model": "fake/t"})
    return response.json()["data"]["id"]


async def test_local_create_with_a_grant_then_list_and_revoke(invoke, client):
    workflow_id = await new_workflow(client)
    outcome = await invoke(
        "keys", "create", "--account", "acme", "--label", "dash", "--scope", "read",
        "--workflow", workflow_id, "--expires-in", "30d", **LOCAL,
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.stderr
    lines = outcome.stdout.strip().splitlines()
    assert f"scope read, {workflow_id}, expires " in lines[0] and "account acme" in lines[0]
    key = lines[-1]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get(f"/v1/workflows/{workflow_id}", headers=headers)).status_code == 200
    trigger = await client.post(
        f"/v1/workflows/{workflow_id}/runs", json={"input": "x"}, headers=headers
    )
    assert trigger.status_code == 403

    listed = await invoke("keys", "list", **LOCAL)
    assert listed.exit_code == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split() == [
        "ID", "HINT", "ACCOUNT", "SCOPE", "WORKFLOWS", "EXPIRES", "LAST", "USED", "RATE", "LIMIT",
        "STATE", "LABEL",
    ]  # fmt: skip
    dash = next(row for row in rows if row.endswith("dash"))
    assert " acme " in dash and " read " in dash and workflow_id in dash and " active " in dash
    assert any(" admin " in row and " all " in row and " never " in row for row in rows)

    key_id = dash.split()[0]
    revoked = await invoke("keys", "revoke", key_id, **LOCAL)
    assert (revoked.exit_code, revoked.stdout.strip()) == (0, f"revoked {key_id}")
    response = await client.get("/v1/workflows", headers=headers)
    assert (response.status_code, response.json()) == (401, {"error": "Invalid API key"})
    assert (await invoke("keys", "revoke", key_id, **LOCAL)).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workflow", "nope"), "account acme has no workflow nope"),
        (("--expires-in", "3x"), "'3x' is not a duration like 30d, 12h, 90m or 2w"),
        (("--expires-in", "0d"), "'0d' is not a duration"),
        (("--scope", "owner"), "'owner' is not one of 'read', 'run', 'admin'"),
    ],
)
async def test_local_create_refuses_bad_options(invoke, args, message):
    outcome = await invoke("keys", "create", "--account", "acme", *args, **LOCAL)
    assert outcome.exit_code == 2
    assert message in " ".join(outcome.stderr.split())


async def test_create_needs_an_account_or_the_api(invoke):
    outcome = await invoke("keys", "create", **LOCAL)
    assert outcome.exit_code == 2
    assert "give --account NAME" in outcome.stderr


async def test_remote_create_list_revoke(invoke, client):
    workflow_id = await new_workflow(client)
    outcome = await invoke(
        "keys", "create", "--scope", "run", "--workflow", workflow_id, "--label", "ci",
        "--expires-in", "12h",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.stderr
    first, *_, key = outcome.stdout.strip().splitlines()
    assert f"(scope run, {workflow_id}, expires " in first and "account" not in first
    headers = {"Authorization": f"Bearer {key}"}
    trigger = await client.post(
        f"/v1/workflows/{workflow_id}/runs", json={"input": "x"}, headers=headers
    )
    assert trigger.status_code == 202

    listed = await invoke("keys", "list")
    assert listed.exit_code == 0
    assert "ACCOUNT" not in listed.stdout
    ci = next(line for line in listed.stdout.splitlines() if line.endswith("ci"))
    assert " run " in ci and workflow_id in ci
    as_json = (await invoke("keys", "list", "--json")).json()
    created = next(k for k in as_json if k["label"] == "ci")
    assert created["scope"] == "run" and "key" not in created

    revoked = await invoke("keys", "revoke", created["id"])
    assert (revoked.exit_code, revoked.stdout.strip()) == (0, f"revoked {created['id']}")
    assert (await client.get("/v1/workflows", headers=headers)).status_code == 401
    own = next(k for k in as_json if k["label"] is None)
    itself = await invoke("keys", "revoke", own["id"])
    assert itself.exit_code == 3
    assert "A key cannot revoke itself (HTTP 409)" in itself.stderr


async def test_remote_commands_with_a_narrow_key_say_why(invoke, settings):
    _, read_key = await make_key(settings, scope="read")
    outcome = await invoke("keys", "list", key=read_key)
    assert outcome.exit_code == 3
    assert "Insufficient permissions (HTTP 403)" in outcome.stderr
    assert "scope" in outcome.stderr
