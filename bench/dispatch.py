"""Dispatch latency through the PostgreSQL queue: trigger committed -> first step started.

    .venv/bin/python -m bench.dispatch [--runs 500] [--interval 0.03]

Topology: `loopllama serve --no-worker` and one `loopllama worker`, a zero-latency fake
Anthropic server in its own process. Runs are triggered one at a time, `--interval` seconds
apart (an idle worker woken by LISTEN/NOTIFY each time); the latency is the run's `created_at`
(stamped in the trigger's transaction) to its first step's `started_at` (stamped by the worker
after it fetched the job and claimed the run), both from the database. The first 50 runs warm
the worker up (its first model call imports the SDK) and are not counted.

Prints the figures and writes bench/results/dispatch-postgresql.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx
import psycopg

from bench.support import (
    cli,
    create_workflow,
    environment,
    fake_provider,
    percentile,
    scratch_database,
    start,
    start_server,
    stop,
)

RESULTS = Path(__file__).parent / "results"
WARM_UP = 50


def measure(runs: int, interval: float) -> dict:
    with fake_provider(0.0) as provider_url, scratch_database("postgresql") as url:
        env = environment(url, provider_url)
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        api, base = start_server(env, "--no-worker")
        worker = start(env, "worker")
        try:
            path = f"/v1/workflows/{create_workflow(base, key, 1)}/runs"
            time.sleep(2)  # the worker registers and listens
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
                for i in range(WARM_UP + runs):
                    assert http.post(path, json={"input": f"d{i}"}).status_code == 202
                    time.sleep(interval)
            time.sleep(2)
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT extract(epoch FROM s.started_at - r.created_at) * 1000 "
                    'FROM runs r JOIN steps s ON s.run_id = r.id AND s."order" = 0 '
                    "ORDER BY r.created_at"
                ).fetchall()
        finally:
            stop(api, worker)
    latencies = [float(row[0]) for row in rows][WARM_UP:]
    return {
        "backend": "postgresql",
        "runs": len(latencies),
        "interval_s": interval,
        "trigger_to_first_step_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.03)
    args = parser.parse_args()
    figures = measure(args.runs, args.interval)
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dispatch-postgresql.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
