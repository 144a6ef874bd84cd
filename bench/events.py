"""Run events and streams: delta latency, event delivery, and 1,000 open streams.

    .venv/bin/python -m bench.events [--runs 20] [--streams 1000] [--skip-postgres]
    .venv/bin/python -m bench.events --idle-only [--streams 1000]    the memory figure alone

Every run pauses first (`ask_human`), so its stream is open before the model call we measure
starts (on SQLite the engine streams a call only while someone watches); the answer resumes it
and the fake provider (in this process, so its send times and our receive times share a
clock) streams the reply in pieces, `CHUNK_DELAY` apart.

- Delta latency: the fake provider writes a piece -> the SSE client has it as `step.delta`.
- Event delivery: an event is written (its `created_at`, in the transaction that commits the
  state change) -> the SSE client has it. Wall clocks of one machine.
- Setups: SQLite, `loopllama serve` executing and streaming in one process; PostgreSQL,
  `serve --no-worker` streaming what a separate `loopllama worker` executes (LISTEN/NOTIFY).
- 1,000 streams: that many paused runs on one SQLite `serve`, a stream open on each: the
  server's RSS before and after (per stream), then every run answered at once, each streaming
  its reply to its own stream: delta latency p50/p99 under that load (`--idle-only` stops
  before this: the streams are closed, the runs left paused).

Prints the figures and writes bench/results/events.json. The machine's load is reported with
them: two cores are shared with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tests.fakes.provider_server import FakeProviderServer, Reply, tool_call

from bench.support import (
    cli,
    environment,
    percentile,
    rss_kib,
    scalar,
    scratch_database,
    start,
    start_server,
    stop,
)

RESULTS = Path(__file__).parent / "results"
CHUNKS = 8
CHUNK_DELAY = 0.02
CREW = [{"role": "writer", "systemPrompt": "Ask, then write."}]


def _ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * 1000, 2),
        "p99": round(percentile(values, 99) * 1000, 2),
    }


def _pieces(run: int) -> tuple[str, ...]:
    return tuple(f"r{run}c{i} " for i in range(CHUNKS))


def _reply_for(run: int, chunk_delay: float) -> Reply:
    pieces = _pieces(run)
    return Reply("".join(pieces), chunks=pieces, chunk_delay=chunk_delay)


async def _follow(
    http: httpx.AsyncClient, run_id: str, opened: asyncio.Event, deltas: list, events: list
) -> None:
    """Read the run's stream to its end, stamping what arrives; a dropped connection is
    resumed with Last-Event-ID (as the SDK does), and `reconnects` counts them."""
    last = 0
    while True:
        try:
            headers = {"Last-Event-ID": str(last)} if last else {}
            async with http.stream(
                "GET", f"/v1/runs/{run_id}/stream", headers=headers, timeout=None
            ) as response:
                assert response.status_code == 200, await response.aread()
                kind = None
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        opened.set()  # replayed: live now
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        now_perf, now_wall = time.perf_counter(), time.time()
                        data = json.loads(line[6:])
                        if kind == "step.delta":
                            deltas.append((now_perf, data["text"]))
                        else:
                            last = data["id"]
                            events.append((now_wall, data))
                            if data["type"] in ("run.completed", "run.failed"):
                                return
        except httpx.TransportError:
            RECONNECTS.append(run_id)
            await asyncio.sleep(0.2)


RECONNECTS: list[str] = []


def _delta_latencies(fake: FakeProviderServer, deltas: list) -> list[float]:
    sent = {text: at for at, text in fake.sent_chunks}
    latencies = []
    for received, text in deltas:
        for piece in text.split(" "):
            if piece and f"{piece} " in sent:
                latencies.append(received - sent[f"{piece} "])
    return latencies


def _event_latencies(events: list, after_id: int) -> list[float]:
    latencies = []
    for received, event in events:
        if event["id"] > after_id:  # live ones only, not the replay
            written = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
            latencies.append(received - written.timestamp())
    return latencies


async def measure_sequential(url: str, key: str, fake: FakeProviderServer, runs: int) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        workflow = (
            await http.post(
                "/v1/workflows",
                json={
                    "name": "events",
                    "model": "claude-bench",
                    "crew": CREW,
                    "human_in_the_loop": {"ask_questions": True},
                },
            )
        ).json()["data"]
        delta_lat, event_lat = [], []
        for i in range(runs):
            fake.enqueue(tool_call("ask_human", {"question": "Go?"}), _reply_for(i, CHUNK_DELAY))
            run_id = (
                await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
            ).json()["data"]["id"]
            while (await http.get(f"/v1/runs/{run_id}")).json()["data"]["status"] != (
                "waiting_input"
            ):
                await asyncio.sleep(0.01)
            opened, deltas, events = asyncio.Event(), [], []
            reader = asyncio.create_task(_follow(http, run_id, opened, deltas, events))
            await asyncio.wait_for(opened.wait(), 30)
            paused_at = max(e["id"] for _, e in events)
            answer = await http.post(
                f"/v1/runs/{run_id}/respond", json={"action": "input", "input": "yes"}
            )
            assert answer.status_code == 202, answer.text
            await asyncio.wait_for(reader, 60)
            delta_lat += _delta_latencies(fake, deltas)
            event_lat += _event_latencies(events, paused_at)
    return {"delta_latency_ms": _ms(delta_lat), "event_delivery_ms": _ms(event_lat)}


async def measure_many_streams(
    url: str,
    key: str,
    pid: int,
    fake: FakeProviderServer,
    count: int,
    database_url: str,
    idle_only: bool = False,
) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=count + 50, max_keepalive_connections=count + 50)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        workflow = (
            await http.post(
                "/v1/workflows",
                json={
                    "name": "many",
                    "model": "claude-bench",
                    "crew": CREW,
                    "human_in_the_loop": {"ask_questions": True},
                },
            )
        ).json()["data"]
        fake.enqueue(*[tool_call("ask_human", {"question": "Go?"}) for _ in range(count)])
        gate = asyncio.Semaphore(50)

        async def trigger(i: int) -> str:
            async with gate:
                response = await http.post(
                    f"/v1/workflows/{workflow['id']}/runs", json={"input": f"run {i}"}
                )
                return response.json()["data"]["id"]

        run_ids = await asyncio.gather(*(trigger(i) for i in range(count)))
        deadline = time.monotonic() + 600
        query = "SELECT count(*) FROM runs WHERE status = 'waiting_input'"
        while scalar(database_url, query) < count:
            assert time.monotonic() < deadline, "runs did not pause"
            await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    before = rss_kib(pid)
    # Fresh connections: the server closes keep-alive ones idle for 5 s, and reusing one
    # just as it does so fails the request.
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        opened = [asyncio.Event() for _ in run_ids]
        deltas: list = []
        readers = [
            asyncio.create_task(_follow(http, run_id, opened[i], deltas, []))
            for i, run_id in enumerate(run_ids)
        ]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 300)
        await asyncio.sleep(2.0)
        during = rss_kib(pid)
        print(f"{count} streams open: server RSS {before} -> {during} KiB", flush=True)
        idle = {
            "streams": count,
            "rss_before_kib": before,
            "rss_with_streams_kib": during,
            "rss_per_stream_kib": round((during - before) / count, 2),
        }
        if idle_only:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            return idle
        fake.clear()
        fake.enqueue(*[_reply_for(i, 0.1) for i in range(count)])

        async def answer(run_id: str) -> None:
            # A respond is safe to repeat (409 once it arrived); a connection reset under this
            # load is retried.
            async with gate:
                for attempt in range(5):
                    try:
                        response = await http.post(
                            f"/v1/runs/{run_id}/respond", json={"action": "input", "input": "yes"}
                        )
                    except httpx.TransportError:
                        await asyncio.sleep(0.5 * (attempt + 1))
                        continue
                    assert response.status_code in (202, 409), response.text
                    return
                raise RuntimeError(f"could not answer run {run_id}")

        await asyncio.gather(*(answer(r) for r in run_ids))
        await asyncio.wait_for(asyncio.gather(*readers), 600)
    return {
        **idle,
        "delta_latency_all_streaming_ms": _ms(_delta_latencies(fake, deltas)),
        "stream_reconnects": len(RECONNECTS),
    }


def _server_env(database_url: str, fake: FakeProviderServer, **extra: str) -> dict[str, str]:
    env = environment(database_url, fake.url, **extra)
    env.pop("LOOPLLAMA_PROVIDER_HTTP_TRANSPORT")  # the default transport streams as well
    return env


async def sqlite_setup(fake: FakeProviderServer, runs: int) -> dict:
    with scratch_database("sqlite") as url:
        env = _server_env(url, fake)
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        server, api = start_server(env)
        try:
            return await measure_sequential(api, key, fake, runs)
        finally:
            stop(server)


async def postgres_setup(fake: FakeProviderServer, runs: int) -> dict:
    with scratch_database("postgresql") as url:
        env = _server_env(url, fake, LOOPLLAMA_DATABASE_POOL_SIZE="5")
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        server, api = start_server(env, "--no-worker")
        worker = start(env, "worker")
        try:
            await asyncio.sleep(3)  # the worker migrates and starts listening to its queue
            return await measure_sequential(api, key, fake, runs)
        finally:
            stop(server, worker)


async def many_streams(fake: FakeProviderServer, count: int, idle_only: bool = False) -> dict:
    with scratch_database("sqlite") as url:
        env = {**_server_env(url, fake), "LOOPLLAMA_LOG_LEVEL": "info"}
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        server, api = start_server(env, log=Path(tempfile.gettempdir()) / "events-server.log")
        try:
            return await measure_many_streams(api, key, server.pid, fake, count, url, idle_only)
        finally:
            stop(server)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--idle-only",
        action="store_true",
        help="only the RSS of --streams idle streams (no latency runs, no answering)",
    )
    args = parser.parse_args()
    # 1,000 streams are 1,000 sockets on each side (the server inherits our limit).
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    figures: dict[str, Any] = {"load_average_before": os.getloadavg()}
    if args.idle_only:
        args.runs = 0
    if args.runs == 0:
        args.skip_postgres = True

    def record(name: str, value: dict) -> None:
        figures[name] = value
        print(name, json.dumps(value), flush=True)

    with FakeProviderServer() as fake:
        if args.runs:
            record("sqlite_one_process", await sqlite_setup(fake, args.runs))
            fake.clear()
        if not args.skip_postgres:
            record("postgresql_api_and_worker", await postgres_setup(fake, args.runs))
            fake.clear()
        if args.streams:
            record("many_streams_sqlite", await many_streams(fake, args.streams, args.idle_only))
    figures["load_average_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2))
    if args.idle_only:
        return  # a partial run: the results file keeps the full one
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
