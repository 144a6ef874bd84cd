"""CLI fixtures: run `loopllama ...` with click's runner against the real app in process.

The command runs in a worker thread (it is sync code that sleeps and prompts); its requests go
through `BlockingTransport` to the app on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

from loopllama.cli.main import cli
from loopllama.client import _retry
from tests.client.support import BASE_URL, BlockingTransport, StreamingASGITransport


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Invoke = Callable[..., Awaitable[Outcome]]


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "INITIAL_RETRY_DELAY", 0.001)


@pytest.fixture
def invoke(app, api_key: str) -> Invoke:
    """`await invoke("runs", "show", run_id, input="...")`: exit code, stdout, stderr."""

    async def run(
        *args: str,
        input: str | None = None,
        key: str | None = api_key,
        base_url: str = BASE_URL,
        in_process: bool = True,
    ) -> Outcome:
        options: dict[str, Any] = {}
        if in_process:
            transport = BlockingTransport(StreamingASGITransport(app), asyncio.get_running_loop())
            options = {"transport": transport}
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            list(args),
            input=input,
            env={"LOOPLLAMA_API_KEY": key, "LOOPLLAMA_BASE_URL": base_url},
            obj={"client_options": options},
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run
