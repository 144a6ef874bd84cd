"""The OpenAI provider: one chat completion per `complete`, through the official SDK.

Chat completions is the API every OpenAI-compatible server speaks (Ollama, vLLM, llama.cpp,
LM Studio, gateways), so `OPENAI_BASE_URL` turns this adapter into theirs. Translation:

    system prompt            -> a leading {"role": "system"} message
    assistant ToolCallParts <-> "tool_calls" (arguments are a JSON string on the wire)
    each ToolResultPart      -> its own {"role": "tool", "tool_call_id": ...} message
    finish_reason            -> the neutral (Anthropic) stop reasons: end_turn, tool_use, ...

The SDK never retries (`max_retries=0`): the engine owns retries, so one `complete` is exactly
one HTTP request.

When the request has a listener (`on_text`), the call streams (`stream=True`, with
`stream_options.include_usage` for the token counts): content deltas are handed over as they
arrive and the chunks are assembled into the same response a plain call gives (tool-call
arguments arrive in pieces, by index). `models.timeout` then bounds the whole call.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import openai

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
    ToolResultPart,
)
from loopllama.settings import ModelSettings, ProviderSettings

if TYPE_CHECKING:  # the SDKs' transport package, only named in a signature
    import httpx2

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# OpenAI-compatible servers ignore the key, but the SDK refuses to send a request without one.
PLACEHOLDER_API_KEY = "loopllama-no-key"

_STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


class OpenAIProvider:
    name = "openai"
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
        if providers.openai_api_key is not None:
            api_key = providers.openai_api_key.get_secret_value()
        elif providers.openai_base_url is not None:
            api_key = PLACEHOLDER_API_KEY
        else:
            raise ProviderNotConfigured(
                "no API key configured for provider openai: set OPENAI_API_KEY "
                "(or OPENAI_BASE_URL for an OpenAI-compatible server)"
            )
        base_url = providers.openai_base_url or DEFAULT_BASE_URL
        # OpenAI's reasoning models (o1, o3, ...) reject `max_tokens`; compatible servers may
        # not know its successor `max_completion_tokens`. Each gets the one it understands.
        official = urlsplit(base_url).hostname == "api.openai.com"
        self._max_tokens_param = "max_completion_tokens" if official else "max_tokens"
        self._owns_transport = http_client is None
        self._timeout = models.timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=models.timeout,
            max_retries=0,
            http_client=http_client,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        for message in request.messages:
            messages.extend(_message_params(message))
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            self._max_tokens_param: request.max_tokens,
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
        try:
            if request.on_text is None:
                completion = await self._client.chat.completions.create(**params)
                return _model_response(completion)
            async with asyncio.timeout(self._timeout):
                return await self._stream(params, request.on_text)
        except ProviderError:
            raise
        except TimeoutError:
            raise ProviderTimeout() from None
        except Exception as exc:  # the engine catches ProviderError only
            raise to_provider_error(
                self.name,
                exc,
                status_error=openai.APIStatusError,
                timeout_error=openai.APITimeoutError,
                connection_error=openai.APIConnectionError,
            ) from exc

    async def _stream(self, params: dict[str, Any], on_text: Any) -> ModelResponse:
        stream = await self._client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        if not isinstance(stream, openai.AsyncStream):
            raise ProviderError("model provider openai returned an unexpected response")
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: Any = None
        model: str | None = None
        seen_choice = False
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                model = getattr(chunk, "model", None) or model
                if not chunk.choices:
                    continue
                seen_choice = True
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    text.append(delta.content)
                    on_text(delta.content)
                for call in delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    entry["id"] = call.id or entry["id"]
                    if call.function is not None:
                        entry["name"] += call.function.name or ""
                        entry["arguments"] += call.function.arguments or ""
        if not seen_choice:
            raise ProviderError("model provider openai returned no choices")
        parts: list[Part] = [TextPart("".join(text))] if text else []
        parts += [
            ToolCallPart(c["id"], c["name"], _decode_arguments(c["arguments"]))
            for _, c in sorted(calls.items())
        ]
        return ModelResponse(
            Message("assistant", tuple(parts)),
            tokens_in=(usage.prompt_tokens or 0) if usage else 0,
            tokens_out=(usage.completion_tokens or 0) if usage else 0,
            stop_reason=_STOP_REASONS.get(finish, finish) if finish else "end_turn",
            model=model,
            # OpenAI counts cached tokens inside prompt_tokens (and bills no cache writes).
            cache_read=_cached_tokens(usage),
        )

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._client.close()


def _message_params(message: Message) -> list[dict[str, Any]]:
    if message.role == "assistant":
        calls = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": _encode_arguments(call.input)},
            }
            for call in message.tool_calls
        ]
        param: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if calls:
            param["tool_calls"] = calls
        elif param["content"] is None:
            param["content"] = ""
        return [param]
    # Tool messages must directly follow the assistant turn that made the calls, so they come
    # before any text of the same user turn.
    params: list[dict[str, Any]] = [
        {
            "role": "tool",
            "tool_call_id": part.call_id,
            "content": f"Error: {part.content}" if part.is_error else part.content,
        }
        for part in message.parts
        if isinstance(part, ToolResultPart)
    ]
    if message.text or not params:
        params.append({"role": "user", "content": message.text})
    return params


def _encode_arguments(tool_input: dict[str, Any]) -> str:
    # Arguments that were not JSON go back as the model wrote them (see _decode_arguments).
    if set(tool_input) == {"_raw"} and isinstance(tool_input["_raw"], str):
        return tool_input["_raw"]
    return json.dumps(tool_input)


def _decode_arguments(arguments: str | None) -> dict[str, Any]:
    # Models (small local ones especially) can emit broken JSON; the tool then sees `_raw`
    # and fails with a readable error instead of the whole step crashing here.
    if not arguments or not arguments.strip():
        return {}
    try:
        decoded = json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}
    return decoded if isinstance(decoded, dict) else {"_raw": arguments}


def _model_response(completion: object) -> ModelResponse:
    # The SDK hands back the raw text when a proxy answers 200 with something else than JSON.
    if not isinstance(completion, openai.types.chat.ChatCompletion):
        raise ProviderError("model provider openai returned an unexpected response")
    if not completion.choices:
        raise ProviderError("model provider openai returned no choices")
    choice = completion.choices[0]
    parts: list[Part] = [TextPart(choice.message.content)] if choice.message.content else []
    for call in choice.message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is not None:  # custom (non-function) tools are never offered
            parts.append(
                ToolCallPart(call.id, function.name, _decode_arguments(function.arguments))
            )
    usage = completion.usage
    finish = choice.finish_reason
    return ModelResponse(
        Message("assistant", tuple(parts)),
        tokens_in=(usage.prompt_tokens or 0) if usage else 0,
        tokens_out=(usage.completion_tokens or 0) if usage else 0,
        stop_reason=_STOP_REASONS.get(finish, finish) if finish else "end_turn",
        model=getattr(completion, "model", None),
        # OpenAI counts cached tokens inside prompt_tokens (and bills no cache writes).
        cache_read=_cached_tokens(usage),
    )


def _cached_tokens(usage: Any) -> int:
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return (getattr(details, "cached_tokens", None) or 0) if details else 0
