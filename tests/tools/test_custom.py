"""Custom HTTP tools: POST the input as JSON to the user's endpoint (a real server here)."""

from __future__ import annotations

import json
import logging

import pytest

from loopllama.engine.tools.custom import CustomHttpTool
from tests.fakes.mail_and_http import HttpServer
from tests.tools.support import context

SECRET = "Bearer sk-very-secret-value"
SCHEMA = {
    "type": "object",
    "properties": {"email": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["email"],
}
ALLOW_LOCAL = {"http_tool_allow": "127.0.0.1"}


def crm_tool(url: str, headers: dict[str, str] | None = None) -> CustomHttpTool:
    return CustomHttpTool.from_definition(
        {
            "name": "crm_upsert",
            "description": "Create or update a CRM contact",
            "input_schema": SCHEMA,
            "url": url,
            "headers": {"Authorization": SECRET} if headers is None else headers,
        }
    )


async def test_posts_the_input_with_secret_and_idempotency_key(http_server: HttpServer) -> None:
    tool = crm_tool(http_server.url("/echo"))

    outcome = await tool.run(
        {"email": "ann@example.com", "score": 3}, context("run9:step1:toolu_01", **ALLOW_LOCAL)
    )

    assert not outcome.is_error, outcome.content
    [request] = http_server.requests
    assert request.method == "POST"
    assert json.loads(request.body) == {"email": "ann@example.com", "score": 3}
    assert request.headers["authorization"] == SECRET
    assert request.headers["idempotency-key"] == "run9:step1:toolu_01"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(outcome.content)["body"] == '{"email": "ann@example.com", "score": 3}'


async def test_the_same_call_sends_the_same_key(http_server: HttpServer) -> None:
    tool = crm_tool(http_server.url("/echo"))
    for key in ("k1", "k1", "k2"):
        await tool.run({"email": "a@b.co"}, context(key, **ALLOW_LOCAL))

    assert [r.headers["idempotency-key"] for r in http_server.requests] == ["k1", "k1", "k2"]


async def test_non_2xx_is_an_error_with_the_status(http_server: HttpServer) -> None:
    outcome = await crm_tool(http_server.url("/status/422")).run(
        {"email": "a@b.co"}, context(**ALLOW_LOCAL)
    )

    assert outcome.is_error
    assert outcome.content == "Tool crm_upsert failed: HTTP 422 Unprocessable Entity\n\nboom"


async def test_redirects_are_not_followed(http_server: HttpServer) -> None:
    url = http_server.url(f"/redirect?to={http_server.url('/echo')}")

    outcome = await crm_tool(url).run({"email": "a@b.co"}, context(**ALLOW_LOCAL))

    assert outcome.is_error
    assert outcome.content.startswith("Tool crm_upsert failed: HTTP 302 Found")
    assert len(http_server.requests) == 1


async def test_long_responses_are_truncated(http_server: HttpServer) -> None:
    outcome = await crm_tool(http_server.url("/big?n=9000")).run(
        {"email": "a@b.co"}, context(**ALLOW_LOCAL)
    )

    assert not outcome.is_error
    assert outcome.content.endswith("x\n[Body truncated: showing the first 8,000 characters.]")


async def test_schema_invalid_input_never_reaches_the_endpoint(http_server: HttpServer) -> None:
    outcome = await crm_tool(http_server.url("/echo")).run(
        {"email": "a@b.co", "score": "high"}, context(**ALLOW_LOCAL)
    )

    assert outcome.is_error
    assert outcome.content == "Invalid input for crm_upsert: score: 'high' is not of type 'integer'"
    assert http_server.requests == []


async def test_loopback_endpoint_needs_the_allow_list(http_server: HttpServer) -> None:
    outcome = await crm_tool(http_server.url("/echo")).run({"email": "a@b.co"}, context())

    assert outcome.is_error
    assert "refused to connect to 127.0.0.1: loopback address" in outcome.content
    assert http_server.requests == []


async def test_secrets_stay_out_of_logs_and_results(
    http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tool = crm_tool(http_server.url("/echo"))
    await tool.run({"email": "a@b.co"}, context(**ALLOW_LOCAL))
    broken = crm_tool(http_server.url("/echo"), {"Authorization": SECRET + "\r\nX-Evil: 1"})
    outcome = await broken.run({"email": "a@b.co"}, context(**ALLOW_LOCAL))

    assert outcome.is_error
    assert outcome.content == (
        "Tool crm_upsert is misconfigured: "
        "the value of header 'Authorization' is invalid (printable ASCII only)"
    )
    assert "sk-very-secret" not in caplog.text
    assert "'Authorization': '****'" in caplog.text
    assert "sk-very-secret" not in repr(tool)
    assert len(http_server.requests) == 1


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (
            {"type": "object", "properties": {"a": {"$ref": "https://schemas.test/a.json"}}},
            "Tool crm_upsert is misconfigured: input_schema may only use $ref within itself (a "
            "JSON pointer or anchor starting with '#'); remote and file references such as "
            "'https://schemas.test/a.json' are not allowed",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            "Invalid input for crm_upsert: the tool's input schema has a $ref that cannot be "
            "resolved",
        ),
        (
            {"type": "object", "properties": {"a": {"pattern": "("}}},
            "Tool crm_upsert is misconfigured: input_schema is not a valid JSON Schema: "
            "properties/a/pattern: '(' is not a 'regex'",
        ),
    ],
)
async def test_a_broken_stored_schema_is_an_error_result(
    http_server: HttpServer, schema: dict, reason: str
) -> None:
    tool = CustomHttpTool("crm_upsert", "", schema, http_server.url("/echo"))

    outcome = await tool.run({"a": "x"}, context(**ALLOW_LOCAL))

    assert outcome.is_error
    assert outcome.content == reason
    assert http_server.requests == []
