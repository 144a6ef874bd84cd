"""The Anthropic provider: one Messages API call per `complete`, through the official SDK.

Neutral parts map one to one onto Anthropic content blocks: `TextPart` <-> `text`,
`ToolCallPart` <-> `tool_use`, `ToolResultPart` -> `tool_result` (in a user turn).
The SDK never retries (`max_retries=0`): the engine owns retries and their backoff, so one
`complete` is exactly one HTTP request.

When the request has a listener (`on_text`), the call streams (`messages.stream`): each text
delta is handed over as it arrives, and the SDK assembles the same `Message` a plain call
returns. `models.timeout` then bounds the whole call, as it bounds a plain call's wait for its
answer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import anthropic

from loopllama.providers._http_errors import to_provider_error
from loopllama.providers.base import (
    Message,
    ModelRequest,
    ModelResponse,
    Part,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    TextPart,
    ToolCallPart,
)
from loopllama.settings import ModelSettings, ProviderSettings

if TYPE_CHECKING:  # the SDKs' transport package, only named in a signature
    import httpx2

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider:
    name = "anthropic"
    supports_tools = True
    streams = True

    def __init__(
        self,
        providers: ProviderSettings,
        models: ModelSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        """`http_client`, when given, stays the caller's: `aclose` leaves it open."""
        if providers.anthropic_api_key is None:
            raise ProviderNotConfigured(
                "no API key configured for provider anthropic: set ANTHROPIC_API_KEY"
            )
        self._owns_transport = http_client is None
        self._timeout = models.timeout
        self._client = anthropic.AsyncAnthropic(
            api_key=providers.anthropic_api_key.get_secret_value(),
            # Explicit, so the settings (not the SDK re-reading the environment) decide.
            base_url=providers.anthropic_base_url or DEFAULT_BASE_URL,
            timeout=models.timeout,
            max_retries=0,
            http_client=http_client,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [_message_param(m) for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        try:
            if request.on_text is None:
                response = await self._client.messages.create(**params)
            else:
                async with asyncio.timeout(self._timeout):
                    response = await self._stream(params, request.on_text)
            return _model_response(response)
        except ProviderError:
            raise
        except TimeoutError:
            raise ProviderTimeout() from None
        except Exception as exc:  # the engine catches ProviderError only
            raise to_provider_error(
                self.name,
                exc,
                status_error=anthropic.APIStatusError,
                timeout_error=anthropic.APITimeoutError,
                connection_error=anthropic.APIConnectionError,
            ) from exc

    async def _stream(self, params: dict[str, Any], on_text: Any) -> object:
        async with self._client.messages.stream(**params) as stream:
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    on_text(event.delta.text)
            return await stream.get_final_message()

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._client.close()


def _message_param(message: Message) -> dict[str, Any]:
    # Anthropic rejects empty text blocks (an assistant turn that is only a tool call).
    blocks = [_block(p) for p in message.parts if not (isinstance(p, TextPart) and not p.text)]
    return {"role": message.role, "content": blocks}


def _block(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.input}
    return {
        "type": "tool_result",
        "tool_use_id": part.call_id,
        "content": part.content,
        "is_error": part.is_error,
    }


def _model_response(response: object) -> ModelResponse:
    # The SDK hands back the raw text when a proxy answers 200 with something else than JSON.
    if not isinstance(response, anthropic.types.Message):
        raise ProviderError("model provider anthropic returned an unexpected response")
    parts: list[Part] = []
    for block in response.content:
        if block.type == "text":
            parts.append(TextPart(block.text))
        elif block.type == "tool_use":
            tool_input = block.input if isinstance(block.input, dict) else {"_raw": block.input}
            parts.append(ToolCallPart(block.id, block.name, tool_input))
        # Other blocks (thinking, server tools) have no neutral form and are not sent back.
    usage = response.usage
    # Anthropic reports cache reads and writes beside input_tokens, not inside it.
    read = (getattr(usage, "cache_read_input_tokens", None) or 0) if usage else 0
    write = (getattr(usage, "cache_creation_input_tokens", None) or 0) if usage else 0
    return ModelResponse(
        Message("assistant", tuple(parts)),
        tokens_in=((usage.input_tokens or 0) if usage else 0) + read + write,
        tokens_out=(usage.output_tokens or 0) if usage else 0,
        stop_reason=response.stop_reason or "end_turn",
        model=getattr(response, "model", None),
        cache_read=read,
        cache_write=write,
    )
