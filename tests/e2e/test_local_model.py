"""One end-to-end run on the real embedded model: SmolLM2-135M-Instruct through llama.cpp.

Not speed-bound: a loaded CI machine may make a few tokens per second, so the model gets a
timeout sized for the slowest machine (a hang guard, not a speed check) and writes few tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers import app_client, wait_for_run

pytestmark = [pytest.mark.local_model, pytest.mark.slow]


@pytest.fixture
async def http(settings, api_key) -> AsyncIterator[httpx.AsyncClient]:
    # No provider configured: the local model is the default.
    slow_machine = settings.model_copy(
        update={"models": settings.models.model_copy(update={"timeout": 600.0, "max_tokens": 16})}
    )
    async with app_client(slow_machine, api_key) as client:
        yield client


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_default_workflow_runs_on_the_local_model(http):
    workflow = (await http.post("/v1/workflows", json={"name": "Brief writer"})).json()["data"]
    assert workflow["model"] == "local/smollm2"
    run = (
        await http.post(
            f"/v1/workflows/{workflow['id']}/runs",
            json={"input": "Name three colours of the rainbow."},
        )
    ).json()["data"]
    done = await wait_for_run(http, run["id"], ("completed", "failed"), timeout=1800)
    assert done["status"] == "completed", done["error"]
    planner, writer = done["steps"]
    assert planner["model"] == writer["model"] == "local/smollm2"
    assert planner["output"].strip() and writer["output"].strip()
    assert done["output"] == writer["output"]
    assert planner["tokens_in"] > 0 and planner["tokens_out"] > 0
    assert done["tokens_in"] == planner["tokens_in"] + writer["tokens_in"]
    assert writer["input"].startswith("Original request:\nName three colours of the rainbow.")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_local_model_cannot_be_given_tools(http):
    response = await http.post(
        "/v1/workflows",
        json={"name": "x", "crew": [{"role": "r", "systemPrompt": "p", "tools": ["send_email"]}]},
    )
    assert response.status_code == 400
    assert "cannot call tools" in response.json()["error"]
