"""A scale-out topology in subprocesses: `loopllama serve --no-worker` and `loopllama worker`
processes on one PostgreSQL database, each killable and restartable, plus a private PostgreSQL
cluster that a test may restart without disturbing anyone else's database."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from loopllama.store.db import Database
from loopllama.store.keys import create_key
from loopllama.store.migrate import upgrade
from tests.helpers import free_port

# Recovery in seconds, not tens of seconds: heartbeat 0.5 s, a worker silent for 3 s is dead,
# a sweep every second.
FAST_RECOVERY = {
    "LOOPLLAMA_WORKER_HEARTBEAT": "0.5",
    "LOOPLLAMA_WORKER_STALLED_AFTER": "3",
    "LOOPLLAMA_WORKER_SWEEP_EVERY": "1",
    "LOOPLLAMA_WORKER_POLL_INTERVAL": "0.2",
}
# The machine's PostgreSQL allows 100 connections, shared with other tests: about 10 for each
# API process and 15 for each worker.
SMALL_POOLS = {"LOOPLLAMA_DATABASE_POOL_SIZE": "3", "LOOPLLAMA_WORKER_QUEUE_POOL_SIZE": "3"}


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, migrated database on the server of `admin_url`; dropped afterwards."""
    name = f"loopllama_scaleout_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def new_api_key(database_url: str, account: str = "scaleout") -> str:
    db = Database(database_url, pool_size=1)
    try:
        async with db.write() as conn:
            _, key = await create_key(conn, f"{account}-{uuid.uuid4().hex[:6]}", None)
    finally:
        await db.dispose()
    return key


class Process:
    """One `loopllama` subprocess with its own log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loopllama.cli", *self.args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log:
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no {needle!r} in {timeout}s:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster:
    """API and worker processes sharing `database_url`; everything stopped by `close`."""

    def __init__(self, workdir: Path, database_url: str, **env: str) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("LOOPLLAMA_", "ANTHROPIC_", "OPENAI_"))
            },
            "LOOPLLAMA_DATABASE_URL": database_url,
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "LOOPLLAMA_MODEL_RETRY_BASE_DELAY": "0.01",
            "LOOPLLAMA_RATE_LIMIT": "1000000/second",
            "LOOPLLAMA_RUN_RATE_LIMIT": "1000000/second",
            **FAST_RECOVERY,
            **SMALL_POOLS,
            **env,
        }
        self.processes: list[Process] = []
        self.api_url = ""

    def _process(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(name, args, {**self.env, **env}, self.workdir)
        self.processes.append(process)
        return process

    def start_api(self, *, name: str = "api", **env: str) -> Process:
        port = free_port()
        api = self._process(name, ["serve", "--no-worker", "--port", str(port)], env).start()
        self.api_url = self.api_url or f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if api.process.poll() is not None:
                raise RuntimeError(f"api exited:\n{api.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return api
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"api did not start:\n{api.log}")

    def start_worker(self, name: str, provider_url: str, *args: str, **env: str) -> Process:
        worker = self._process(name, ["worker", *args], {"ANTHROPIC_BASE_URL": provider_url, **env})
        worker.start().wait_for_log("worker ready")
        return worker

    def client(self, api_key: str, timeout: float = 10) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        )

    def close(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"==== {p.name}\n{p.log[-6000:]}" for p in self.processes)


async def create_workflow(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "scale-out", "model": "claude-test", **fields}
    response = await http.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def trigger(http: httpx.AsyncClient, workflow: dict[str, Any], text: str = "go") -> str:
    response = await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": text})
    assert response.status_code == 202, response.text
    return response.json()["data"]["id"]


async def wait_until_finished(
    http: httpx.AsyncClient, run_ids: list[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll until every run is completed or failed; returns them (with steps) by id."""
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    pending = list(run_ids)
    while pending:
        still = []
        for run_id in pending:
            response = await http.get(f"/v1/runs/{run_id}")
            assert response.status_code == 200, response.text
            run = response.json()["data"]
            if run["status"] in ("completed", "failed"):
                done[run_id] = run
            else:
                still.append(run_id)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(pending)} run(s) unfinished, e.g. {pending[:3]}")
            await asyncio.sleep(0.2)
    return done


# -- a private PostgreSQL cluster ------------------------------------------------------------


def _postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL server on a free port, which a test may stop and restart at will
    (restarting the machine's shared server would break every other test using it)."""

    def __init__(self) -> None:
        bindir = _postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loopllama-pg-"))
        self.data = self.dir / "data"
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0  # the server refuses to run as root

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def create(self) -> PrivatePostgres:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
