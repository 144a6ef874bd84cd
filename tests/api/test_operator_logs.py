"""What an operator reads at INFO: an access line per request, a line per run state change,
and `.env` settings. Through the public API, on both databases."""

from __future__ import annotations

import logging

import pytest

from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply
from loopllama.settings import Settings
from tests.helpers import wait_for_run

WORKFLOW = {
    "name": "Brief writer",
    "model": "fake/test",
    "crew": [
        {"role": "planner", "systemPrompt": "Plan it."},
        {"role": "writer", "systemPrompt": "Write it."},
    ],
}


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="loopllama")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


async def test_access_log_has_method_route_status_duration_and_no_secret(
    client, api_key, info_logs
):
    created = await client.post("/v1/workflows", json=WORKFLOW)
    workflow_id = created.json()["data"]["id"]
    await client.get(f"/v1/workflows/{workflow_id}")
    await client.get("/v1/runs/nope")
    await client.get("/v1/nowhere")
    await client.get("/v1/workflows", headers={"Authorization": "Bearer ll_live_wrong"})

    access = lines(info_logs, "loopllama.access")
    assert len(access) == 5
    assert access[0].startswith("POST /v1/workflows 201 ") and access[0].endswith("ms")
    assert access[1].startswith("GET /v1/workflows/{workflow_id} 200 ")  # the template, no id
    assert access[2].startswith("GET /v1/runs/{run_id} 404 ")
    assert access[3].startswith("GET '/v1/nowhere' 404 ")
    assert access[4].startswith("GET /v1/workflows 401 ")
    everything = "\n".join(r.getMessage() for r in info_logs.records)
    assert api_key not in everything and "ll_live_wrong" not in everything


async def test_one_line_per_run_state_change(client, fake_provider, info_logs):
    workflow = (await client.post("/v1/workflows", json=WORKFLOW)).json()["data"]
    fake_provider.enqueue(reply("plan", 10, 5), reply("brief", 20, 7))
    run = (await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "Go."})).json()[
        "data"
    ]
    await wait_for_run(client, run["id"])

    states = [line for line in lines(info_logs, "loopllama.runs") if f"run={run['id']}" in line]
    assert [line.split()[1] for line in states] == [
        "status=queued",
        "status=running",
        "status=completed",
    ]
    assert all(f"workflow={workflow['id']}" in line for line in states)
    completed = states[-1]
    assert "step=2/writer" in completed
    assert "tokens_in=30 tokens_out=12" in completed
    assert " duration=" in completed and completed.split("duration=")[1].split()[0].endswith("s")


async def test_a_failed_run_logs_its_step_and_reason(client, fake_provider, info_logs):
    workflow = (await client.post("/v1/workflows", json=WORKFLOW)).json()["data"]
    fake_provider.enqueue(ProviderStatusError(400, "prompt is too long"))
    run = (await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "Go."})).json()[
        "data"
    ]
    await wait_for_run(client, run["id"])

    failed = [line for line in lines(info_logs, "loopllama.runs") if "status=failed" in line]
    assert len(failed) == 1
    assert f"run={run['id']}" in failed[0] and "step=1/planner" in failed[0]
    assert 'error="model provider returned 400: prompt is too long"' in failed[0]


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    # The test session runs in a scratch directory (tests/conftest.py): its .env is this one.
    (tmp_path / ".env").write_text(
        "LOOPLLAMA_DATABASE_URL=sqlite:///from-dotenv.db\n"
        "LOOPLLAMA_SMTP_URL=smtp://mail.example.com:587\n"
        "SOMETHING_ELSE=ignored\n"
    )
    settings = Settings()
    assert settings.database.url == "sqlite:///from-dotenv.db"
    assert settings.tools.smtp_url is not None
    monkeypatch.setenv("LOOPLLAMA_DATABASE_URL", "sqlite:///from-env.db")
    assert Settings().database.url == "sqlite:///from-env.db"
