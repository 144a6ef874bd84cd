"""Prometheus metrics: scraped from the metrics port after real runs and parsed with
prometheus_client's own parser, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loopllama.providers import fake
from tests.helpers import wait_for_run
from tests.hitl.support import make_workflow, start

CRM_TOOL = {
    "name": "crm_upsert",
    "description": "Create or update a CRM contact",
    "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    "headers": {"Authorization": "Bearer metrics-tool-secret"},
}


async def scrape(settings) -> tuple[str, dict[str, Any]]:
    url = f"http://127.0.0.1:{settings.telemetry.metrics_port}/metrics"
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    return sum(
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    )


async def test_runs_steps_model_calls_tools_and_requests_are_counted(
    client, fake_provider, http_server, settings, api_key
):
    tool = {**CRM_TOOL, "url": http_server.url("/echo")}
    fake_provider.enqueue(
        fake.tool_call("crm_upsert", {"email": "ada@example.com"}),
        fake.reply("saved", tokens_in=30, tokens_out=7),
        fake.reply("reviewed", tokens_in=20, tokens_out=3),
    )
    workflow = await make_workflow(
        client,
        crew=[
            {"role": "crm", "systemPrompt": "Keep the CRM.", "tools": ["crm_upsert"]},
            {"role": "reviewer", "systemPrompt": "Review."},
        ],
        tools=[tool],
    )
    run = await wait_for_run(client, await start(client, workflow))
    assert run["status"] == "completed", run

    text, samples = await scrape(settings)
    assert value(samples, "loopllama_runs_total", status="queued") == 1
    assert value(samples, "loopllama_runs_total", status="completed") == 1
    assert value(samples, "loopllama_step_duration_seconds_count", outcome="done") == 2
    calls = {"provider": "fake", "model": "test", "outcome": "ok"}
    assert value(samples, "loopllama_model_call_duration_seconds_count", **calls) == 3
    # The tool-call turn reports 5 and 5 (fake.tool_call), then 30/7 and 20/3.
    assert total(samples, "loopllama_tokens_total", direction="input") == 55
    assert total(samples, "loopllama_tokens_total", direction="output") == 15
    tools = {"tool": "custom", "outcome": "ok"}
    assert value(samples, "loopllama_tool_call_duration_seconds_count", **tools) == 1
    trigger = {"method": "POST", "route": "/v1/workflows/{workflow_id}/runs", "status_code": "202"}
    assert value(samples, "loopllama_http_request_duration_seconds_count", **trigger) == 1
    polled = total(
        samples, "loopllama_http_request_duration_seconds_count", route="/v1/runs/{run_id}"
    )
    assert polled >= 1
    assert value(samples, "loopllama_queue_depth") == 0
    assert value(samples, "loopllama_runs_waiting_input") == 0
    assert value(samples, "loopllama_runs_in_progress") == 0

    # No account, key, user text or raw path in any label.
    for secret in (api_key, run["id"], workflow["id"], "Keep the CRM", "crm_upsert", "acme"):
        assert secret not in text
    assert "metrics-tool-secret" not in text


async def test_paused_and_failed_runs_and_unmatched_paths(client, fake_provider, settings):
    fake_provider.enqueue(
        fake.tool_call("ask_human", {"question": "Which region?"}),
        fake.ProviderError("the model is gone"),
    )
    asker = await make_workflow(
        client,
        crew=[{"role": "a", "systemPrompt": "Ask."}],
        hitl={"ask_questions": True},
    )
    paused = await wait_for_run(client, await start(client, asker))
    assert paused["status"] == "waiting_input"
    failing = await make_workflow(client, crew=[{"role": "b", "systemPrompt": "Fail."}])
    failed = await wait_for_run(client, await start(client, failing))
    assert failed["status"] == "failed"
    await client.get("/no/such/path/4f1c")

    text, samples = await scrape(settings)
    assert value(samples, "loopllama_runs_waiting_input") == 1  # read from the database
    assert value(samples, "loopllama_runs_total", status="waiting_input") == 1
    assert value(samples, "loopllama_runs_total", status="failed") == 1
    assert value(samples, "loopllama_step_duration_seconds_count", outcome="paused") == 1
    assert value(samples, "loopllama_step_duration_seconds_count", outcome="failed") == 1
    errors = {"provider": "fake", "model": "test", "outcome": "error"}
    assert value(samples, "loopllama_model_call_duration_seconds_count", **errors) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status_code": "404"}
    assert value(samples, "loopllama_http_request_duration_seconds_count", **unmatched) == 1
    assert "4f1c" not in text


async def test_queue_gauges_read_the_database(settings, api_key, fake_provider):
    """Runs recorded `queued` with no engine to take them: depth and age come from the table."""
    from tests.helpers import app_client

    async with app_client(settings, api_key, run_engine=False) as client:
        crew = [{"role": "a", "systemPrompt": "A."}]
        workflow = await make_workflow(client, crew=crew, model="claude-sonnet-4-6")
        for _ in range(3):
            await start(client, workflow)
        _, samples = await scrape(settings)
    assert value(samples, "loopllama_queue_depth") == 3
    assert value(samples, "loopllama_queue_oldest_age_seconds") > 0
