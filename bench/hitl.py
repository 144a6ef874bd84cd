"""Human in the loop: respond -> next model request latency, and the memory of paused runs.

    .venv/bin/python -m bench.hitl [--resumes 300] [--paused 10000] [--database-url URL]

Both against `loopllama serve` in a separate process (uvicorn, the engine on), with a
zero-latency fake Anthropic server in this process:

- Resume latency: runs pause on `ask_human`; the time from just before `POST .../respond` is
  sent to the moment the agent's next model request reaches the fake provider. Both stamps are
  `time.perf_counter()` (CLOCK_MONOTONIC, shared by processes on Linux).
- Paused-run memory: the server's resident memory (VmRSS) after 1,000 paused runs and after
  `--paused` of them, the difference per paused run, and the number of run tasks the engine
  holds (it should be 0: a paused run lives in the database only).

Prints the figures and writes them to bench/results/hitl-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
from tests.fakes.provider_server import FakeProviderServer, text, tool_call
from tests.helpers import LiveServer

from bench.overhead import percentile

RESULTS = Path(__file__).parent / "results"
CREW = [{"role": "assistant", "systemPrompt": "Ask when unsure."}]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def wait_status(http: httpx.AsyncClient, run_id: str, status: str) -> dict:
    while True:
        run = (await http.get(f"/v1/runs/{run_id}")).json()["data"]
        if run["status"] == status:
            return run
        if run["status"] == "failed":
            raise RuntimeError(run["error"])
        await asyncio.sleep(0.002)


async def resume_latency(http, workflow_id: str, fake: FakeProviderServer, count: int) -> dict:
    latencies = []
    for i in range(count + 20):
        fake.enqueue(tool_call("ask_human", {"question": f"q{i}?"}), text("thanks"))
        run = (
            await http.post(f"/v1/workflows/{workflow_id}/runs", json={"input": f"r{i}"})
        ).json()["data"]
        await wait_status(http, run["id"], "waiting_input")
        seen = len(fake.requests)
        sent = time.perf_counter()
        response = await http.post(
            f"/v1/runs/{run['id']}/respond", json={"action": "input", "input": "yes"}
        )
        assert response.status_code == 202, response.text
        (arrived,) = [r.arrived for r in fake.wait_for_requests(seen + 1)[seen:]]
        if i >= 20:
            latencies.append((arrived - sent) * 1000)
        await wait_status(http, run["id"], "completed")
    return {
        "resumes": count,
        "respond_to_next_model_request_ms": {
            "p50": round(percentile(latencies, 50), 3),
            "p99": round(percentile(latencies, 99), 3),
        },
    }


async def paused_memory(http, workflow_id: str, fake, server: LiveServer, count: int) -> dict:
    async def pause_many(n: int, offset: int) -> None:
        fake.enqueue(*[tool_call("ask_human", {"question": "?"}) for _ in range(n)])
        semaphore = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with semaphore:
                response = await http.post(
                    f"/v1/workflows/{workflow_id}/runs", json={"input": f"p{offset + i}"}
                )
                assert response.status_code == 202

        await asyncio.gather(*[one(i) for i in range(n)])
        while fake.pending:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the last pauses are written

    await pause_many(1000, 0)
    baseline = rss_kib(server.process.pid)
    await pause_many(count - 1000, 1000)
    after = rss_kib(server.process.pid)
    runs = (await http.get(f"/v1/workflows/{workflow_id}/runs")).json()["data"]
    assert all(r["status"] == "waiting_input" for r in runs), "not every run paused"
    return {
        "paused_runs": count,
        "server_rss_mib_at_1000_paused": round(baseline / 1024, 1),
        f"server_rss_mib_at_{count}_paused": round(after / 1024, 1),
        "rss_bytes_per_paused_run": round((after - baseline) * 1024 / (count - 1000)),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resumes", type=int, default=300)
    parser.add_argument("--paused", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeProviderServer() as fake:
        env = {"LOOPLLAMA_DATABASE_URL": args.database_url} if args.database_url else {}
        server = LiveServer(Path(tmp), fake, **env)
        server.start()
        try:
            async with server.client() as http:
                workflow = (
                    await http.post(
                        "/v1/workflows",
                        json={
                            "name": "hitl-bench",
                            "model": "claude-bench",
                            "crew": CREW,
                            "human_in_the_loop": {"ask_questions": True},
                        },
                    )
                ).json()["data"]
                figures = await resume_latency(http, workflow["id"], fake, args.resumes)
                figures.update(await paused_memory(http, workflow["id"], fake, server, args.paused))
        finally:
            server.stop()
    backend = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    figures = {"backend": backend, **figures}
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hitl-{backend}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
