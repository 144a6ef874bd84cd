"""AnthropicProvider against the fake Messages API server, through the real anthropic SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from loopllama.providers.anthropic import AnthropicProvider
from loopllama.providers.base import (
    Message,
    ModelRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderNotConfigured,
    ProviderStatusError,
    ProviderTimeout,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from loopllama.settings import ModelSettings, ProviderSettings
from tests.fakes.fixtures import provider_server
from tests.fakes.provider_server import (
    Drop,
    ErrorReply,
    FakeProviderServer,
    Reply,
    ToolCall,
    error,
    overloaded,
    rate_limited,
    stall,
    text,
)

__all__ = ["provider_server"]

MODEL = "claude-sonnet-4-6"
WEATHER = ToolSpec(
    "get_weather",
    "Current weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def make_provider(url: str, *, timeout: float = 5.0, **kwargs) -> AnthropicProvider:
    return AnthropicProvider(
        ProviderSettings(anthropic_api_key="sk-ant-test", anthropic_base_url=url),
        ModelSettings(timeout=timeout),
        **kwargs,
    )


@pytest.fixture
async def provider(provider_server: FakeProviderServer) -> AsyncIterator[AnthropicProvider]:
    p = make_provider(provider_server.url)
    yield p
    await p.aclose()


def ask(text: str = "Hello there", **kwargs) -> ModelRequest:
    return ModelRequest(
        MODEL, kwargs.pop("system", "You are terse."), (Message.user(text),), **kwargs
    )


async def test_text_reply_with_tokens_and_request_shape(provider, provider_server):
    provider_server.enqueue(text("Hi!", tokens_in=12, tokens_out=3))

    response = await provider.complete(ask("Hello there", max_tokens=77))

    assert response.message == Message("assistant", (TextPart("Hi!"),))
    assert (response.tokens_in, response.tokens_out, response.stop_reason) == (12, 3, "end_turn")
    [sent] = provider_server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["authorization"] == "Bearer sk-ant-test"
    assert "anthropic-version" in sent.headers
    assert sent.body == {
        "model": MODEL,
        "max_tokens": 77,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
    }


async def test_empty_system_prompt_and_no_tools_are_left_out(provider, provider_server):
    await provider.complete(ask(system=""))

    body = provider_server.last_request.body
    assert "system" not in body
    assert "tools" not in body


async def test_default_reply_echoes_with_derived_tokens(provider):
    response = await provider.complete(ask("ping"))

    assert response.text == "echo: ping"
    assert response.tokens_in > 0
    assert response.tokens_out > 0


async def test_tool_call_round_trip(provider, provider_server):
    provider_server.enqueue(
        Reply(
            "Let me check.",
            (
                ToolCall("get_weather", {"city": "Paris"}, "toolu_a"),
                ToolCall("get_weather", {"city": "Atlantis"}, "toolu_b"),
            ),
        ),
        text("Sunny in Paris."),
    )
    first = ask("Weather in Paris and Atlantis?", tools=(WEATHER,))

    response = await provider.complete(first)

    assert response.stop_reason == "tool_use"
    assert response.text == "Let me check."
    assert response.tool_calls == [
        ToolCallPart("toolu_a", "get_weather", {"city": "Paris"}),
        ToolCallPart("toolu_b", "get_weather", {"city": "Atlantis"}),
    ]
    assert provider_server.last_request.tools == [
        {
            "name": "get_weather",
            "description": "Current weather of a city",
            "input_schema": WEATHER.input_schema,
        }
    ]

    results = Message(
        "user",
        (
            ToolResultPart("toolu_a", "18C, sunny"),
            ToolResultPart("toolu_b", "unknown city", is_error=True),
        ),
    )
    second = ModelRequest(
        MODEL, first.system, (*first.messages, response.message, results), tools=(WEATHER,)
    )
    final = await provider.complete(second)

    assert final.text == "Sunny in Paris."
    assert provider_server.last_request.messages[1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_b",
                    "name": "get_weather",
                    "input": {"city": "Atlantis"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_a",
                    "content": "18C, sunny",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": "unknown city",
                    "is_error": True,
                },
            ],
        },
    ]


async def test_tool_only_assistant_turn_sends_no_empty_text_block(provider, provider_server):
    call = Message("assistant", (TextPart(""), ToolCallPart("toolu_1", "get_weather", {})))
    request = ModelRequest(
        MODEL, "", (Message.user("hi"), call, Message("user", (ToolResultPart("toolu_1", "ok"),)))
    )

    await provider.complete(request)

    assert provider_server.last_request.messages[1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    ]


@pytest.mark.parametrize(
    ("scripted", "reason", "transient", "retry_after"),
    [
        (overloaded(), "model provider returned 529: overloaded", True, None),
        (error(500), "model provider returned 500: internal server error", True, None),
        (rate_limited(7), "model provider returned 429: rate limit exceeded", True, 7.0),
        (
            ErrorReply(503, headers={"retry-after-ms": "1500"}),
            "model provider returned 503: service unavailable",
            True,
            1.5,
        ),
        (
            error(400, "messages.0.content: Field required"),
            "model provider returned 400: messages.0.content: Field required",
            False,
            None,
        ),
        (
            error(401, "Invalid x-api-key"),
            "model provider returned 401: invalid x-api-key",
            False,
            None,
        ),
        (
            ErrorReply(502, body="<html><body>Bad Gateway</body></html>"),
            "model provider returned 502: bad gateway",
            True,
            None,
        ),
    ],
)
async def test_status_errors_map_to_one_attempt(
    provider, provider_server, scripted, reason, transient, retry_after
):
    provider_server.enqueue(scripted, "never reached")

    with pytest.raises(ProviderStatusError) as caught:
        await provider.complete(ask())

    assert caught.value.reason == reason
    assert caught.value.status == scripted.status
    assert caught.value.transient is transient
    assert caught.value.retry_after == retry_after
    # No hidden SDK retry: one request, and the second scripted answer is still waiting.
    assert len(provider_server.requests) == 1
    assert provider_server.pending == 1


async def test_timeout_maps_to_provider_timeout_after_one_attempt(provider_server):
    provider = make_provider(provider_server.url, timeout=0.2)
    provider_server.enqueue(stall(3), stall(3))
    try:
        with pytest.raises(ProviderTimeout) as caught:
            await provider.complete(ask())
    finally:
        await provider.aclose()

    assert caught.value.reason == "model request timed out"
    assert caught.value.transient
    assert len(provider_server.requests) == 1


async def test_connection_refused_maps_to_connection_error():
    with FakeProviderServer() as closed:
        pass  # stopped: its port now refuses connections
    provider = make_provider(closed.url)
    try:
        with pytest.raises(ProviderConnectionError) as caught:
            await provider.complete(ask())
    finally:
        await provider.aclose()

    assert caught.value.reason == "could not reach model provider anthropic: connection refused"
    assert caught.value.transient


async def test_dropped_connection_maps_to_connection_error_after_one_attempt(
    provider, provider_server
):
    provider_server.enqueue(Drop(), "never reached")

    with pytest.raises(ProviderConnectionError) as caught:
        await provider.complete(ask())

    assert caught.value.reason == (
        "could not reach model provider anthropic: server disconnected without sending a response"
    )
    assert len(provider_server.requests) == 1


async def test_non_json_success_body_is_a_provider_error(provider, provider_server):
    provider_server.enqueue(ErrorReply(200, body="this is not JSON"))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(ask())

    assert caught.value.reason == "model provider anthropic returned an unexpected response"
    assert not caught.value.transient


async def test_missing_api_key_is_not_configured():
    with pytest.raises(ProviderNotConfigured, match="ANTHROPIC_API_KEY"):
        AnthropicProvider(ProviderSettings(anthropic_api_key=None), ModelSettings())


async def test_injected_http_client_is_used_and_left_open(provider_server):
    async with httpx2.AsyncClient(headers={"x-injected": "yes"}) as http_client:
        provider = make_provider(provider_server.url, http_client=http_client)
        await provider.complete(ask())
        await provider.aclose()

        assert provider_server.last_request.headers["x-injected"] == "yes"
        assert not http_client.is_closed


async def test_aclose_closes_the_client(provider_server):
    provider = make_provider(provider_server.url)
    await provider.aclose()

    with pytest.raises(ProviderError):
        await provider.complete(ask())
    assert provider_server.requests == []
