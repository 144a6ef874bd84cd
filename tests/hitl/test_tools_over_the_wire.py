"""Tool calls in the Anthropic and OpenAI wire formats (the real SDKs against a fake provider
server), custom HTTP tools on a real local server, and SSRF refusals, through the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from loopllama.providers import fake
from tests.fakes.provider_server import text, tool_call
from tests.helpers import app_client, with_fake_providers
from tests.hitl.support import make_workflow, respond, settle, start

CRM_TOOL = {
    "name": "crm_upsert",
    "description": "Create or update a CRM contact",
    "input_schema": {
        "type": "object",
        "properties": {"email": {"type": "string"}},
        "required": ["email"],
    },
    "headers": {"Authorization": "Bearer crm-secret-123"},
}


@pytest.fixture
async def wire(settings, provider_server, api_key) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(with_fake_providers(settings, provider_server), api_key) as client:
        yield client


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "gpt-4.1"])
async def test_approved_custom_tool_in_each_wire_format(wire, provider_server, http_server, model):
    tool = {**CRM_TOOL, "url": http_server.url("/echo")}
    provider_server.enqueue(
        tool_call("crm_upsert", {"email": "ada@example.com"}, id="toolu_1"),
        text("Contact saved.", 40, 6),
    )
    workflow = await make_workflow(
        wire,
        model=model,
        crew=[{"role": "crm", "systemPrompt": "Keep the CRM.", "tools": ["crm_upsert"]}],
        tools=[tool],
        hitl={"approve_tools": ["crm_upsert"]},
    )
    run_id = await start(wire, workflow)
    paused = await settle(wire, run_id)
    assert paused["pending"]["tool"] == "crm_upsert"
    assert paused["pending"]["tool_input"] == {"email": "ada@example.com"}
    assert http_server.requests == []

    await respond(wire, run_id, action="approve")
    done = await settle(wire, run_id)
    assert done["status"] == "completed", done
    assert done["output"] == "Contact saved."

    (call,) = http_server.requests
    assert call.method == "POST"
    assert json.loads(call.body) == {"email": "ada@example.com"}
    assert call.headers["authorization"] == "Bearer crm-secret-123"
    assert call.headers["idempotency-key"].startswith("loopllama-")

    first, second = provider_server.requests
    # The tool was offered in the vendor's native format...
    if model.startswith("claude"):
        assert first.tools[0]["name"] == "crm_upsert"
        assert first.tools[0]["input_schema"] == CRM_TOOL["input_schema"]
        result = second.messages[-1]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
        result_text = json.dumps(result["content"])
    else:
        assert first.tools[0]["function"]["name"] == "crm_upsert"
        result = second.messages[-1]
        assert result["role"] == "tool" and result["tool_call_id"] == "toolu_1"
        result_text = result["content"]
    # ...and the endpoint's response body came back as the tool result.
    assert "ada@example.com" in result_text


async def test_http_request_refuses_loopback_without_the_allow_list(
    wire, provider_server, http_server, settings
):
    provider_server.enqueue(
        tool_call("http_request", {"method": "GET", "url": "http://169.254.169.254/latest"}),
        tool_call("http_request", {"method": "GET", "url": http_server.url("/hello", "localhost")}),
        text("I could not fetch them."),
    )
    workflow = await make_workflow(
        wire,
        model="claude-sonnet-4-6",
        crew=[{"role": "fetcher", "systemPrompt": "Fetch.", "tools": ["http_request"]}],
    )
    run_id = await start(wire, workflow)
    done = await settle(wire, run_id)
    assert done["status"] == "completed"
    metadata_call, local_call = done["steps"][0]["tool_calls"]
    assert metadata_call["is_error"] and local_call["is_error"]
    assert "refused" in metadata_call["result"].lower()
    # "127.0.0.1" is allowed in these settings, but "localhost" is not listed by name.
    assert "refused" in local_call["result"].lower()
    assert http_server.requests == []


async def test_custom_tool_secrets_are_masked_everywhere(client, http_server, fake_provider):
    tool = {**CRM_TOOL, "url": http_server.url("/echo")}
    workflow = await make_workflow(
        client,
        crew=[{"role": "crm", "systemPrompt": "p", "tools": ["crm_upsert"]}],
        tools=[tool],
    )
    assert workflow["tools"][0]["headers"] == {"Authorization": "********"}
    for body in [
        (await client.get(f"/v1/workflows/{workflow['id']}")).text,
        (await client.get("/v1/workflows")).text,
    ]:
        assert "crm-secret-123" not in body
    # Sending the masked value back keeps the stored secret.
    patched = await client.patch(
        f"/v1/workflows/{workflow['id']}",
        json={"tools": [{**tool, "headers": {"Authorization": "********"}}]},
    )
    assert "crm-secret-123" not in patched.text
    fake_provider.enqueue(fake.tool_call("crm_upsert", {"email": "x@y.z"}), fake.reply("ok"))
    run_id = await start(client, workflow)
    await settle(client, run_id)
    assert http_server.requests[-1].headers["authorization"] == "Bearer crm-secret-123"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"crew": [{"role": "r", "systemPrompt": "p", "tools": ["nope"]}]}, "unknown tool 'nope'"),
        (
            {"tools": [{**CRM_TOOL, "name": "Bad Name", "url": "https://x.example"}]},
            "Invalid tool name",
        ),
        ({"tools": [{**CRM_TOOL, "url": "ftp://x.example"}]}, "Tool 'crm_upsert'"),
        (
            {"tools": [{**CRM_TOOL, "url": "https://x.example", "input_schema": {"type": 5}}]},
            "Tool 'crm_upsert'",
        ),
        (
            {
                "tools": [
                    {**CRM_TOOL, "url": "https://x.example"},
                    {**CRM_TOOL, "url": "https://y.example"},
                ]
            },
            "Duplicate tool name 'crm_upsert'",
        ),
        (
            {"tools": [{**CRM_TOOL, "name": "send_email", "url": "https://x.example"}]},
            "Duplicate tool name 'send_email'",
        ),
        ({"human_in_the_loop": {"approve_tools": ["ghost"]}}, "unknown tool 'ghost'"),
        ({"human_in_the_loop": {"on_timeout": "approve"}}, "Invalid enum value"),
        ({"human_in_the_loop": {"timeout_seconds": 0}}, "greater than or equal to 1"),
        ({"tools": [{**CRM_TOOL}]}, "Required"),
    ],
)
async def test_tool_configuration_is_validated_at_create_and_patch(client, change, fragment):
    body = {"name": "v", "model": "fake/test", **change}
    created = await client.post("/v1/workflows", json=body)
    assert created.status_code == 400, created.text
    assert fragment in created.json()["error"]
    workflow = await make_workflow(client, crew=[{"role": "r", "systemPrompt": "p"}])
    patched = await client.patch(f"/v1/workflows/{workflow['id']}", json=change)
    assert patched.status_code == 400
    assert fragment in patched.json()["error"]


async def test_hitl_and_tools_appear_on_the_workflow(client, http_server):
    tool = {**CRM_TOOL, "url": http_server.url("/echo")}
    workflow = await make_workflow(
        client,
        crew=[{"role": "r", "systemPrompt": "p", "tools": ["crm_upsert", "send_email"]}],
        tools=[tool],
        hitl={"ask_questions": True, "approve_tools": ["send_email"], "timeout_seconds": 60},
    )
    assert workflow["human_in_the_loop"] == {
        "ask_questions": True,
        "approve_tools": ["send_email"],
        "timeout_seconds": 60,
        "on_timeout": "reject",
    }
    assert workflow["crew"][0]["tools"] == ["crm_upsert", "send_email"]
    assert workflow["tools"][0]["name"] == "crm_upsert"
    off = await client.patch(f"/v1/workflows/{workflow['id']}", json={"human_in_the_loop": None})
    assert off.json()["data"]["human_in_the_loop"] is None
