"""Streaming model calls (`request.on_text`), through the real anthropic and openai SDKs
against the fake server speaking each vendor's SSE format: the pieces make the text, and
everything else (tokens, tool calls, stop reasons, errors, timeouts) is what a plain call
gives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loopllama.providers.anthropic import AnthropicProvider
from loopllama.providers.base import (
    Message,
    ModelRequest,
    ProviderStatusError,
    ProviderTimeout,
    ToolSpec,
)
from loopllama.providers.openai import OpenAIProvider
from loopllama.settings import ModelSettings, ProviderSettings
from tests.fakes.fixtures import provider_server
from tests.fakes.provider_server import FakeProviderServer, Reply, ToolCall, error, stall, text

__all__ = ["provider_server"]

WEATHER = ToolSpec(
    "get_weather",
    "Current weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(params=["anthropic", "openai"])
async def provider(request, provider_server: FakeProviderServer) -> AsyncIterator:
    settings = ProviderSettings(
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=provider_server.url,
        openai_api_key="sk-test",
        openai_base_url=provider_server.openai_url,
    )
    models = ModelSettings(timeout=1.0)
    kind = AnthropicProvider if request.param == "anthropic" else OpenAIProvider
    p = kind(settings, models)
    yield p
    await p.aclose()


def ask(pieces: list[str], *, tools=()) -> ModelRequest:
    return ModelRequest(
        "model-x", "Be brief.", (Message.user("Hello"),), tools=tuple(tools), on_text=pieces.append
    )


async def test_pieces_make_the_text_and_the_rest_is_as_without_streaming(provider, provider_server):
    provider_server.enqueue(
        Reply("Sunny and warm.", tokens_in=12, tokens_out=4),
        Reply("Sunny and warm.", tokens_in=12, tokens_out=4),
    )
    pieces: list[str] = []
    streamed = await provider.complete(ask(pieces))
    plain = await provider.complete(ModelRequest("model-x", "Be brief.", (Message.user("Hello"),)))

    assert pieces == ["Sunny ", "and ", "warm."]
    assert streamed == plain
    streamed_request, plain_request = provider_server.requests
    assert streamed_request.body["stream"] is True
    assert "stream" not in plain_request.body
    if provider.name == "openai":
        assert streamed_request.body["stream_options"] == {"include_usage": True}


async def test_tool_calls_arrive_whole_and_are_not_text(provider, provider_server):
    calls = (ToolCall("get_weather", {"city": "Paris"}, "call_9"),)
    provider_server.enqueue(
        Reply("Let me check.", calls, 30, 9), Reply("Let me check.", calls, 30, 9)
    )
    pieces: list[str] = []
    streamed = await provider.complete(ask(pieces, tools=[WEATHER]))
    plain = await provider.complete(
        ModelRequest("model-x", "Be brief.", (Message.user("Hello"),), tools=(WEATHER,))
    )
    assert "".join(pieces) == "Let me check."
    assert streamed == plain
    assert [(c.id, c.name, c.input) for c in streamed.tool_calls] == [
        ("call_9", "get_weather", {"city": "Paris"})
    ]
    assert streamed.stop_reason == "tool_use"


async def test_an_error_status_is_the_same_error(provider, provider_server):
    provider_server.enqueue(error(429, "Slow down", retry_after=2))
    with pytest.raises(ProviderStatusError) as caught:
        await provider.complete(ask([]))
    assert caught.value.status == 429 and caught.value.transient
    assert caught.value.retry_after == 2


async def test_a_slow_answer_times_out(provider, provider_server):
    provider_server.enqueue(stall(3))
    with pytest.raises(ProviderTimeout):
        await provider.complete(ask([]))


async def test_a_stream_that_trickles_past_the_timeout_times_out(provider, provider_server):
    # Each piece comes before a read timeout would fire; the call as a whole is too slow.
    provider_server.enqueue(Reply("a b c d e f", chunk_delay=0.3))
    pieces: list[str] = []
    with pytest.raises(ProviderTimeout):
        await provider.complete(ask(pieces))
    assert 0 < len(pieces) < 6


# Anthropic streams always carry usage; some OpenAI-compatible servers send none.
@pytest.mark.parametrize("provider", ["openai"], indirect=True)
async def test_no_usage_means_zero_tokens(provider, provider_server):
    provider_server.enqueue(Reply("no usage here", usage=False))
    response = await provider.complete(ask([]))
    assert response.text == "no usage here"
    assert (response.tokens_in, response.tokens_out) == (0, 0)


async def test_text_is_handed_over_as_it_arrives(provider, provider_server):
    provider_server.enqueue(text("one two three"))
    seen: list[tuple[str, int]] = []

    def on_text(piece: str) -> None:
        seen.append((piece, len(provider_server.sent_chunks)))

    request = ModelRequest("m", "", (Message.user("Hi"),), on_text=on_text)
    await provider.complete(request)
    # Each piece reached us after the server sent it, never all of them at once at the end.
    assert [piece for piece, _ in seen] == ["one ", "two ", "three"]
    assert [sent for _, sent in seen] == sorted(sent for _, sent in seen)
    assert seen[0][1] >= 1
