"""What the scale benchmarks share: a fake provider in its own process, a scratch database
(SQLite file or a PostgreSQL database created and dropped), and `loopllama serve` / `worker`
processes pointed at both."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import create_engine, text
from tests.helpers import free_port

from loopllama.store.db import sync_url
from loopllama.store.migrate import upgrade

PG_ADMIN = os.environ.get("LOOPLLAMA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fake_provider(delay: float = 0.0, log: Path | None = None) -> Iterator[str]:
    """`tests.fakes.provider_server` in a subprocess (so it does not share our CPU or GIL);
    with `log`, it appends one JSON line per model request to that file."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.provider_server",
            "--port",
            str(port),
            "--delay",
            str(delay),
            *(("--log", str(log)) if log else ()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_port(port: int, timeout: float = 15) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def scratch_database(backend: str) -> Iterator[str]:
    """A migrated, empty database URL; removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            yield url
        return
    name = f"loopllama_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(database_url: str, provider_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOOPLLAMA_", "ANTHROPIC_", "OPENAI_"))
    }
    env.update(
        LOOPLLAMA_DATABASE_URL=database_url,
        ANTHROPIC_API_KEY="sk-ant-bench",
        ANTHROPIC_BASE_URL=provider_url,
        LOOPLLAMA_PROVIDER_HTTP_TRANSPORT="aiohttp",
        LOOPLLAMA_LOG_LEVEL="warning",
        LOOPLLAMA_RATE_LIMIT=os.environ["LOOPLLAMA_RATE_LIMIT"],  # bench/__init__.py
        LOOPLLAMA_RUN_RATE_LIMIT=os.environ["LOOPLLAMA_RUN_RATE_LIMIT"],
        **extra,
    )
    return env


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "loopllama.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def start(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen:
    output = log.open("ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "loopllama.cli", *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log:
            output.close()


def start_server(
    env: dict[str, str], *extra: str, log: Path | None = None
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = start(env, "serve", "--port", str(port), *extra, log=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("loopllama serve exited")
        time.sleep(0.1)
    raise RuntimeError("loopllama serve did not start")


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scalar(database_url: str, query: str) -> object:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return conn.execute(text(query)).scalar()
    finally:
        engine.dispose()


async def trigger_many(
    url: str, key: str, workflow_id: str, count: int, concurrency: int = 32
) -> None:
    """Trigger `count` runs over HTTP, `concurrency` at a time; every answer must be 202."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60
    ) as http:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                response = await http.post(
                    f"/v1/workflows/{workflow_id}/runs", json={"input": f"run {i}"}
                )
                assert response.status_code == 202, response.text

        await asyncio.gather(*[one(i) for i in range(count)])


def create_workflow(
    url: str, key: str, agents: int = 1, *, crew: list[dict[str, str]] | None = None
) -> str:
    """A workflow of `agents` brief agents, or of the `crew` given."""
    if crew is None:
        crew = [{"role": f"agent{i}", "systemPrompt": "Answer briefly."} for i in range(agents)]
    response = httpx.post(
        f"{url}/v1/workflows",
        json={"name": "bench", "model": "claude-bench", "crew": crew},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    return response.json()["data"]["id"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
