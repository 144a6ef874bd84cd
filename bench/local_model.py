"""The embedded model through the `local` provider: load time, prompt and answer speed.

    python -m bench.local_model [--threads 2] [--calls 3]

Each round sends a new ~750-token prompt with a 1-token answer (the prompt's speed), then the
same prompt, whose processing llama.cpp has cached, with a 64-token answer (the answer's speed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from loopllama.providers.base import Message, ModelRequest
from loopllama.providers.local import LocalProvider
from loopllama.settings import ModelSettings, ProviderSettings

RESULTS = Path(__file__).parent / "results"


def request(call: int, max_tokens: int) -> ModelRequest:
    facts = " ".join(f"Fact {i}: the sky was clear on day {i + 100 * call}." for i in range(50))
    return ModelRequest(
        "smollm2",
        "You are a concise assistant.",
        (Message.user(f"Summarize these notes.\n{facts}"),),
        max_tokens=max_tokens,
    )


async def main(threads: int, calls: int) -> dict:
    provider = LocalProvider(ProviderSettings(local_threads=threads), ModelSettings(timeout=3600))
    started = time.perf_counter()
    await provider.complete(ModelRequest("smollm2", None, (Message.user("Hi"),), max_tokens=1))
    load = time.perf_counter() - started
    prompt_rates, answer_rates = [], []
    for call in range(calls):
        # Prompt alone: a 1-token answer on a new prompt. Then the same prompt (now cached by
        # llama.cpp) with 64 tokens: the answer alone.
        started = time.perf_counter()
        first = await provider.complete(request(call, 1))
        prompt_rates.append(first.tokens_in / (time.perf_counter() - started))
        started = time.perf_counter()
        answer = await provider.complete(request(call, 64))
        answer_rates.append(answer.tokens_out / (time.perf_counter() - started))
    await provider.aclose()
    result = {
        "threads": threads,
        "load_seconds": round(load, 2),
        "prompt_tokens": first.tokens_in,
        "prompt_tokens_per_second": [round(r) for r in prompt_rates],
        "answer_tokens_per_second": [round(r, 1) for r in answer_rates],
    }
    print(
        f"local model, {threads} thread(s): loaded in {load:.2f} s (first call included); "
        f"prompt {first.tokens_in} tokens at {sorted(prompt_rates)[len(prompt_rates) // 2]:.0f} "
        f"tok/s; answer at {sorted(answer_rates)[len(answer_rates) // 2]:.1f} tok/s (medians)"
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(main(args.threads, args.calls))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "local_model.json").write_text(json.dumps(result, indent=2) + "\n")
