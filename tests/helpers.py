"""Test helpers: wait for a run to settle, and drive a real `loopllama serve` subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

SETTLED = ("completed", "failed", "waiting_input")


@asynccontextmanager
async def app_client(
    settings: Any, api_key: str | None = None, **app_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An app built from `settings`, lifespan running, and an HTTP client on it in process
    (authenticated when `api_key` is given). `app_options` go to `create_app`."""
    from loopllama.api.app import create_app

    app = create_app(settings, migrate=False, **app_options)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            yield client


async def wait_for_run(
    client: httpx.AsyncClient, run_id: str, statuses: tuple[str, ...] = SETTLED, timeout=10.0
) -> dict[str, Any]:
    """Poll the run until its status is one of `statuses`; returns the run (with steps)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        run = response.json()["data"]
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} stayed {run['status']!r}: {run}")
        await asyncio.sleep(0.01)


def with_fake_providers(settings: Any, provider_server: Any, **provider_options: Any) -> Any:
    """`settings` with the Anthropic and OpenAI providers pointed at a fake provider server."""
    from loopllama.settings import ProviderSettings

    providers = ProviderSettings(
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=provider_server.url,
        openai_api_key="sk-test",
        openai_base_url=provider_server.openai_url,
        **provider_options,
    )
    return settings.model_copy(update={"providers": providers})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`loopllama serve` in a subprocess, on SQLite in `workdir`, with the Anthropic provider
    pointed at a fake provider server. Can be killed (SIGKILL) and started again."""

    def __init__(self, workdir: Path, provider_server: Any, **env: str) -> None:
        self.workdir = workdir
        self.provider_server = provider_server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = f"sqlite:///{workdir / 'live.db'}"
        self.log_path = workdir / "serve.log"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("LOOPLLAMA_", "ANTHROPIC_", "OPENAI_"))
            },
            "LOOPLLAMA_DATABASE_URL": self.database_url,
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "ANTHROPIC_BASE_URL": provider_server.url,
            "LOOPLLAMA_MODEL_RETRY_BASE_DELAY": "0.01",
            "LOOPLLAMA_RATE_LIMIT": "1000000/second",
            "LOOPLLAMA_RUN_RATE_LIMIT": "1000000/second",
            **env,
        }
        self.process: subprocess.Popen | None = None
        self.api_key = (
            self.cli("keys", "create", "--account", "live").stdout.strip().splitlines()[-1]
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "loopllama.cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loopllama.cli", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=10
        )
