"""OpenAIProvider against the fake chat completions server, through the real openai SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import pytest

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
from loopllama.providers.openai import OpenAIProvider
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
    tool_call,
)

__all__ = ["provider_server"]

MODEL = "gpt-4.1"
WEATHER = ToolSpec(
    "get_weather",
    "Current weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def make_provider(
    base_url: str | None, *, api_key: str | None = "sk-test", timeout: float = 5.0, **kwargs
) -> OpenAIProvider:
    return OpenAIProvider(
        ProviderSettings(openai_api_key=api_key, openai_base_url=base_url),
        ModelSettings(timeout=timeout),
        **kwargs,
    )


@pytest.fixture
async def provider(provider_server: FakeProviderServer) -> AsyncIterator[OpenAIProvider]:
    p = make_provider(provider_server.openai_url)
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
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    # A compatible server gets the classic `max_tokens`.
    assert sent.body == {
        "model": MODEL,
        "max_tokens": 77,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello there"},
        ],
    }


async def test_base_url_without_key_sends_a_placeholder_key(provider_server):
    provider = make_provider(provider_server.openai_url, api_key=None)
    try:
        await provider.complete(ask(system=""))
    finally:
        await provider.aclose()

    sent = provider_server.last_request
    assert sent.headers["authorization"] == "Bearer loopllama-no-key"
    assert sent.messages == [{"role": "user", "content": "Hello there"}]
    assert "tools" not in sent.body


class _ToFakeServer(httpx2.AsyncBaseTransport):
    """Sends requests meant for api.openai.com to the fake server instead."""

    def __init__(self, url: str) -> None:
        self._target = httpx2.URL(url)
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(
            scheme=self._target.scheme, host=self._target.host, port=self._target.port
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_official_api_gets_max_completion_tokens(provider_server):
    async with httpx2.AsyncClient(transport=_ToFakeServer(provider_server.url)) as http_client:
        provider = make_provider(None, http_client=http_client)
        await provider.complete(ask(max_tokens=50))
        await provider.aclose()

    body = provider_server.last_request.body
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body


async def test_tool_call_round_trip(provider, provider_server):
    provider_server.enqueue(
        Reply(
            "Let me check.",
            (
                ToolCall("get_weather", {"city": "Paris"}, "call_a"),
                ToolCall("get_weather", {"city": "Atlantis"}, "call_b"),
            ),
        ),
        text("Sunny in Paris."),
    )
    first = ask("Weather in Paris and Atlantis?", tools=(WEATHER,))

    response = await provider.complete(first)

    assert response.stop_reason == "tool_use"
    assert response.text == "Let me check."
    assert response.tool_calls == [
        ToolCallPart("call_a", "get_weather", {"city": "Paris"}),
        ToolCallPart("call_b", "get_weather", {"city": "Atlantis"}),
    ]
    assert provider_server.last_request.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather of a city",
                "parameters": WEATHER.input_schema,
            },
        }
    ]

    results = Message(
        "user",
        (
            ToolResultPart("call_a", "18C, sunny"),
            ToolResultPart("call_b", "unknown city", is_error=True),
            TextPart("Be brief."),
        ),
    )
    second = ModelRequest(
        MODEL, first.system, (*first.messages, response.message, results), tools=(WEATHER,)
    )
    final = await provider.complete(second)

    assert final.text == "Sunny in Paris."
    assert provider_server.last_request.messages[2:] == [
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Atlantis"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "Error: unknown city"},
        {"role": "user", "content": "Be brief."},
    ]


async def test_invalid_json_arguments_do_not_crash_and_round_trip_verbatim(
    provider, provider_server
):
    provider_server.enqueue(tool_call("get_weather", '{"city": "Par'))

    response = await provider.complete(ask(tools=(WEATHER,)))

    [call] = response.tool_calls
    assert call.input == {"_raw": '{"city": "Par'}

    results = Message("user", (ToolResultPart(call.id, "bad arguments", is_error=True),))
    await provider.complete(ModelRequest(MODEL, "", (Message.user("x"), response.message, results)))

    sent_call = provider_server.last_request.messages[1]["tool_calls"][0]
    assert sent_call["function"]["arguments"] == '{"city": "Par'


async def test_tool_only_assistant_turn_has_null_content(provider, provider_server):
    call = Message("assistant", (ToolCallPart("call_1", "get_weather", {}),))
    results = Message("user", (ToolResultPart("call_1", "ok"),))

    await provider.complete(ModelRequest(MODEL, "", (Message.user("hi"), call, results)))

    assistant, tool = provider_server.last_request.messages[1:]
    assert assistant["content"] is None
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{}"}
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "ok"}


async def test_missing_usage_counts_zero_tokens(provider, provider_server):
    provider_server.enqueue(Reply("no usage here", usage=False))

    response = await provider.complete(ask())

    assert response.text == "no usage here"
    assert (response.tokens_in, response.tokens_out) == (0, 0)


async def test_length_finish_reason_maps_to_max_tokens(provider, provider_server):
    provider_server.enqueue(Reply("cut", stop_reason="length"))

    response = await provider.complete(ask())

    assert response.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("scripted", "reason", "transient", "retry_after"),
    [
        (overloaded(), "model provider returned 529: overloaded", True, None),
        (error(500), "model provider returned 500: internal server error", True, None),
        (rate_limited(7), "model provider returned 429: rate limit exceeded", True, 7.0),
        (
            ErrorReply(429, headers={"retry-after-ms": "250"}),
            "model provider returned 429: rate limit exceeded",
            True,
            0.25,
        ),
        (
            error(400, "Invalid 'messages[0].role'."),
            "model provider returned 400: invalid 'messages[0].role'",
            False,
            None,
        ),
        (
            error(401, "Incorrect API key provided: sk-test."),
            "model provider returned 401: incorrect API key provided: sk-test",
            False,
            None,
        ),
        (
            # Ollama's shape: {"error": "<message>"}
            ErrorReply(
                404,
                body=json.dumps({"error": "model 'llama9' not found"}),
                headers={"content-type": "application/json"},
            ),
            "model provider returned 404: model 'llama9' not found",
            False,
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
    provider = make_provider(provider_server.openai_url, timeout=0.2)
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
    provider = make_provider(closed.openai_url)
    try:
        with pytest.raises(ProviderConnectionError) as caught:
            await provider.complete(ask())
    finally:
        await provider.aclose()

    assert caught.value.reason == "could not reach model provider openai: connection refused"
    assert caught.value.transient


async def test_dropped_connection_maps_to_connection_error_after_one_attempt(
    provider, provider_server
):
    provider_server.enqueue(Drop(), "never reached")

    with pytest.raises(ProviderConnectionError) as caught:
        await provider.complete(ask())

    assert caught.value.reason == (
        "could not reach model provider openai: server disconnected without sending a response"
    )
    assert len(provider_server.requests) == 1


async def test_no_choices_is_a_provider_error(provider, provider_server):
    empty = {"id": "x", "object": "chat.completion", "created": 0, "model": MODEL, "choices": []}
    provider_server.enqueue(
        ErrorReply(200, body=json.dumps(empty), headers={"content-type": "application/json"})
    )

    with pytest.raises(ProviderError, match="returned no choices"):
        await provider.complete(ask())


async def test_non_json_success_body_is_a_provider_error(provider, provider_server):
    provider_server.enqueue(ErrorReply(200, body="this is not JSON"))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(ask())

    assert caught.value.reason == "model provider openai returned an unexpected response"
    assert not caught.value.transient


async def test_neither_key_nor_base_url_is_not_configured():
    settings = ProviderSettings(openai_api_key=None, openai_base_url=None)
    with pytest.raises(ProviderNotConfigured, match="OPENAI_API_KEY"):
        OpenAIProvider(settings, ModelSettings())


async def test_aclose_closes_the_client(provider_server):
    provider = make_provider(provider_server.openai_url)
    await provider.aclose()

    with pytest.raises(ProviderError):
        await provider.complete(ask())
    assert provider_server.requests == []
