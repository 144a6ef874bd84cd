"""One trace from the trigger request in an API process to the worker process that runs the run
(PostgreSQL), both exporting real OTLP to a receiver; JSON logs and metrics of the worker."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.mail_and_http import http_server
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.provider_server import FakeProviderServer, text, tool_call
from tests.helpers import free_port
from tests.scaleout.conftest import cluster, scaleout_db
from tests.scaleout.support import (
    Cluster,
    create_workflow,
    new_api_key,
    trigger,
    wait_until_finished,
)

__all__ = ["cluster", "http_server", "scaleout_db"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOOL = {
    "name": "crm_upsert",
    "description": "Create or update a CRM contact",
    "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    "headers": {"Authorization": "Bearer across-tool-secret"},
}


async def test_the_worker_continues_the_trigger_requests_trace(
    cluster: Cluster, scaleout_db, http_server
):
    metrics_port = free_port()
    with OtlpReceiver() as receiver, FakeProviderServer() as model:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        common = {**otel, "LOOPLLAMA_LOG_FORMAT": "json", "LOOPLLAMA_HTTP_TOOL_ALLOW": "127.0.0.1"}
        cluster.start_api(OTEL_RESOURCE_ATTRIBUTES="loopllama.process=api", **common)
        worker = cluster.start_worker(
            "worker",
            model.url,
            "--metrics-port",
            str(metrics_port),
            OTEL_RESOURCE_ATTRIBUTES="loopllama.process=worker",
            **common,
        )
        model.enqueue(
            tool_call("crm_upsert", {"email": "ada@example.com"}, id="toolu_7"),
            text("Contact saved.", 30, 7),
        )
        key = await new_api_key(scaleout_db)
        async with cluster.client(key) as http:
            workflow = await create_workflow(
                http,
                crew=[{"role": "crm", "systemPrompt": "Keep the CRM.", "tools": ["crm_upsert"]}],
                tools=[{**TOOL, "url": http_server.url("/hello")}],
            )
            run_id = await trigger(http, workflow, "Add Ada")
            (run,) = (await wait_until_finished(http, [run_id], timeout=30)).values()
        assert run["status"] == "completed", run
        spans = receiver.wait_for(
            lambda s: {"execute_tool crm_upsert", "invoke_agent crm"} <= {x.name for x in s}
        )
        async with httpx.AsyncClient() as scraper:
            scraped = (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        cluster.close()  # the worker's log is complete once it stopped

    (request,) = [s for s in spans if s.name == "POST /v1/workflows/{workflow_id}/runs"]
    (run_span,) = [s for s in spans if s.name == "run"]
    step = next(s for s in spans if s.name == "invoke_agent crm")
    chats = [s for s in spans if s.name == "chat claude-test"]
    tool = next(s for s in spans if s.name == "execute_tool crm_upsert")
    assert request.resource["loopllama.process"] == "api"
    for span in (run_span, step, *chats, tool):
        assert span.resource["loopllama.process"] == "worker"
        assert span.trace_id == request.trace_id
    assert run_span.parent_id == request.span_id
    assert len(chats) == 2
    assert chats[0].attributes["gen_ai.provider.name"] == "anthropic"
    assert chats[0].attributes["gen_ai.request.model"] == "claude-test"
    assert chats[0].attributes["gen_ai.response.model"] == "claude-test"  # as the server said
    assert chats[0].attributes["gen_ai.response.finish_reasons"] == ["tool_use"]
    assert chats[-1].attributes["gen_ai.usage.input_tokens"] == 30
    assert chats[-1].attributes["gen_ai.usage.output_tokens"] == 7

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
    }
    assert samples[("loopllama_runs_total", (("status", "completed"),))] == 1
    assert samples[("loopllama_queue_depth", ())] == 0

    lines = [line for line in worker.log.splitlines() if line.strip()]
    assert lines, "the worker wrote no log line"
    for line in lines:  # every line is one JSON object with the four base fields
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    for secret in (key, "across-tool-secret", "sk-ant-test"):
        assert secret not in worker.log
        assert secret not in cluster.processes[0].log
