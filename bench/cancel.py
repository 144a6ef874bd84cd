"""Cancel latency: `POST /v1/runs/{id}/cancel` answered 202 -> the model request in flight
closed at the provider.

    .venv/bin/python -m bench.cancel [--runs 100] [--backend sqlite|postgresql|both]

Topology: SQLite, one `loopllama serve` (the engine in process: the cancel reaches the run
directly); PostgreSQL, `loopllama serve --no-worker` and one `loopllama worker` (the cancel
reaches the worker through NOTIFY). The fake Anthropic server runs in this process (a thread)
and hangs every request until its client closes the connection; it stamps the close with
`time.perf_counter()`, the same clock as the 202's arrival here.

One run at a time: trigger, wait until its model request is in flight, cancel, wait for the
close. Figures: 202 -> close (negative when the close came before the 202 reached us) and
cancel sent -> close, p50 / p99 / max. The first 5 runs warm up (SDK import) and are not counted.

Prints the figures and writes bench/results/cancel-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx
from tests.fakes.provider_server import FakeProviderServer, hang

from bench.support import (
    cli,
    environment,
    percentile,
    scratch_database,
    start,
    start_server,
    stop,
)

RESULTS = Path(__file__).parent / "results"
WARM_UP = 5


def measure(backend: str, runs: int) -> dict:
    with FakeProviderServer() as provider, scratch_database(backend) as url:
        env = environment(url, provider.url)
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        processes = []
        if backend == "sqlite":
            api, base = start_server(env)
            processes.append(api)
        else:
            api, base = start_server(env, "--no-worker")
            processes += [api, start(env, "worker")]
            time.sleep(2)  # the worker registers and listens
        after_202: list[float] = []
        after_send: list[float] = []
        try:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as http:
                crew = [{"role": "solo", "systemPrompt": "Answer."}]
                workflow = http.post(
                    "/v1/workflows", json={"name": "cancel", "model": "claude-bench", "crew": crew}
                ).json()["data"]["id"]
                for i in range(WARM_UP + runs):
                    provider.enqueue(hang(60))
                    run = http.post(f"/v1/workflows/{workflow}/runs", json={"input": f"c{i}"})
                    provider.wait_for_requests(i + 1, timeout=30)
                    sent = time.perf_counter()
                    response = http.post(f"/v1/runs/{run.json()['data']['id']}/cancel")
                    answered = time.perf_counter()
                    assert response.status_code == 202, response.text
                    closed = provider.wait_for_disconnects(i + 1, timeout=30)[-1].closed
                    if i >= WARM_UP:
                        after_202.append((closed - answered) * 1000)
                        after_send.append((closed - sent) * 1000)
        finally:
            stop(*processes)

    def figures(values: list[float]) -> dict:
        return {
            "p50": round(percentile(values, 50), 2),
            "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2),
        }

    return {
        "backend": backend,
        "topology": "serve (engine in process)"
        if backend == "sqlite"
        else "serve --no-worker + 1 worker",
        "runs": runs,
        "cancel_202_to_request_closed_ms": figures(after_202),
        "cancel_sent_to_request_closed_ms": figures(after_send),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    RESULTS.mkdir(exist_ok=True)
    for backend in backends:
        result = measure(backend, args.runs)
        print(json.dumps(result, indent=2))
        (RESULTS / f"cancel-{backend}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
