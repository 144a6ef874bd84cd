"""A scripted provider for engine tests: enqueue answers (or failures), then run a workflow.

Registered under the name "fake" (models `fake/<anything>`), it pops one scripted item per
model call and records every request it received, so tests can assert on prompts, system
prompts, tool results and the number of calls. With nothing scripted it echoes the last user
text, which keeps long test runs free of bookkeeping.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from loopllama.providers.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ProviderError,
    TextPart,
    ToolCallPart,
)

Script = ModelResponse | ProviderError | Callable[[ModelRequest], Awaitable[ModelResponse]]


def reply(text: str, tokens_in: int = 10, tokens_out: int = 5) -> ModelResponse:
    return ModelResponse(Message("assistant", (TextPart(text),)), tokens_in, tokens_out)


def tool_call(
    name: str, input: dict, call_id: str = "call_1", *, text: str = "", tokens: int = 5
) -> ModelResponse:
    parts: tuple = ((TextPart(text),) if text else ()) + (ToolCallPart(call_id, name, input),)
    return ModelResponse(Message("assistant", parts), tokens, tokens, stop_reason="tool_use")


@dataclass
class FakeProvider:
    name: str = "fake"
    supports_tools: bool = True
    streams: bool = True
    script: deque[Script] = field(default_factory=deque)
    requests: list[ModelRequest] = field(default_factory=list)
    delay: float = 0.0

    def enqueue(self, *items: Script) -> None:
        self.script.extend(items)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        response = await self._answer(request)
        if request.on_text is not None:  # streamed word by word, as a vendor would
            for piece in re.findall(r"\S*\s*", response.text):
                if piece:
                    request.on_text(piece)
        return response

    async def _answer(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.script:
            last = request.messages[-1].text if request.messages else ""
            return reply(f"echo: {last}")
        item = self.script.popleft()
        if isinstance(item, ProviderError):
            raise item
        if isinstance(item, ModelResponse):
            return item
        return await item(request)

    async def aclose(self) -> None:
        return None
