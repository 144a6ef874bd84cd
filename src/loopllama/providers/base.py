"""The one interface every model provider implements, and the neutral message format.

A provider turns a `ModelRequest` (system prompt, conversation, tools) into a `ModelResponse`
(text and/or tool calls, token usage). The engine never sees a vendor's wire format: each
adapter translates to and from these dataclasses, which are also what a step persists as its
transcript (`to_json` / `from_json`), so a paused step can be resumed in another process.

Failures are `ProviderError`s whose `reason` is the short, actionable text that ends up in the
step's `error`; `transient` tells the engine whether a retry may help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """The model asks for a tool to be run. `id` is the provider's call id."""

    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The outcome of a tool call, handed back to the model in a user turn."""

    call_id: str
    content: str
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


Part = TextPart | ToolCallPart | ToolResultPart


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant"]
    parts: tuple[Part, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (TextPart(text),))

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "parts": [_part_to_json(p) for p in self.parts]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(data["role"], tuple(_part_from_json(p) for p in data["parts"]))


def _part_to_json(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_call", "id": part.id, "name": part.name, "input": part.input}
    return {
        "type": "tool_result",
        "call_id": part.call_id,
        "content": part.content,
        "is_error": part.is_error,
    }


def _part_from_json(data: dict[str, Any]) -> Part:
    kind = data["type"]
    if kind == "text":
        return TextPart(data["text"])
    if kind == "tool_call":
        return ToolCallPart(data["id"], data["name"], data["input"])
    return ToolResultPart(data["call_id"], data["content"], bool(data.get("is_error")))


# ---------------------------------------------------------------------------------------------
# Requests and responses
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: name, description and JSON schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    model: str  # the provider's own model name, without the "provider/" prefix
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024
    # Called with each piece of the answer's text as it is generated, by providers that
    # stream (`streams = True`); the pieces concatenate to the response's text. Tool-call
    # arguments are not text. None: nobody listens, a provider may answer in one piece.
    on_text: Callable[[str], None] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ModelResponse:
    message: Message  # role "assistant": text and/or tool calls
    tokens_in: int  # every input token, cached ones included
    tokens_out: int
    stop_reason: str = "end_turn"
    model: str | None = None  # the model that answered, when the provider says (traces)
    # The part of tokens_in read from / written to the provider's prompt cache (billed at
    # their own rates, providers/pricing.py).
    cache_read: int = 0
    cache_write: int = 0

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return self.message.tool_calls


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ProviderError(Exception):
    """A model call failed. `reason` is shown to users as the step's error."""

    transient: bool = False

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ProviderNotConfigured(ProviderError):
    """No credentials for the provider; the reason names the variable to set."""


class ProviderTimeout(ProviderError):
    transient = True

    def __init__(self) -> None:
        super().__init__("model request timed out")


class ProviderConnectionError(ProviderError):
    transient = True


class ProviderStatusError(ProviderError):
    """The provider answered with an HTTP error status."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"model provider returned {status}: {message}", retry_after=retry_after)
        self.status = status
        # 408 (timeout), 409 (lock), 429 (rate limit) and every 5xx may pass on a retry.
        self.transient = status in (408, 409, 429) or status >= 500


# ---------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------


class Provider(Protocol):
    """A model provider: one async call, and flags saying what it can do."""

    name: str  # "anthropic", "openai", "local", "fake"
    supports_tools: bool
    # Optional (absent means False): hands text to `request.on_text` as it is generated.
    # streams: bool

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one model call. Raises `ProviderError` (and nothing else) on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or model memory."""
        ...


@dataclass(slots=True)
class ProviderCapabilities:
    """What a provider can do, as reported at startup."""

    name: str
    configured: bool
    supports_tools: bool
    detail: str = field(default="")
