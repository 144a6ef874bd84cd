"""End to end under load: LoopLlama over HTTP against a floor server, every figure a ratio.

    .venv/bin/python -m bench.e2e [--targets floor,sqlite,pg,pg-split] [--phases a,b,c,d]
                                  [--runs-a 200] [--seconds-b 20] [--runs-c 500]
                                  [--floor sdk|raw|sdk,raw] [--profile DIR]
                                  [--logs DIR] [--out FILE]

Each target serves a planner -> writer crew (2 model calls per run, the writer's prompt holding
the planner's answer): `floor` (bench/floor.py, a non-durable aiohttp server of the same two
routes, the model calls through the official SDK, or plain aiohttp with `--floor raw`),
`sqlite` (`loopllama serve`), `pg` (`loopllama serve` on PostgreSQL, LOOPLLAMA_TEST_PG) and
`pg-split` (`serve --no-worker` + one `loopllama worker`). Fresh database per target. The model
is tests/fakes/provider_server.py in its own process (zero latency; 1 s for phase c), logging
each request; every run is checked against that log: one planner call with the run's input,
then one writer call with the planner's answer, the writer's answer as the output.

Clients trigger `POST /v1/workflows/{id}/runs` and poll `GET /v1/runs/{id}` until the run ends.
Before (a) and (b), 20 runs one at a time warm the target up (checked, not counted: LoopLlama
imports the SDK at its first model call):

(a) overhead per run: one client, one run at a time, polling every 2 ms growing to 5 ms.
    Figure: p50 of trigger sent -> completed seen, minus the fake's own handling time of the
    two calls. Breakdown (p50, the fake's arrival stamps on the same clock): trigger sent ->
    first model call; first -> second call; second call -> completed seen.
(b) runs/s: 32 clients back to back (polling 2 ms growing to 50 ms) for --seconds-b.
(c) burst: --runs-c runs triggered at once, model delay 1 s (ideal 2.0 s), each polled every
    1 s, after 4 warm-up runs on the restarted target (first-call costs). Figures: first
    trigger sent -> last run seen completed; peak RSS of the target's process(es) (sampled
    every 50 ms; serve + worker: the sum, and each); trigger p50/p99. Every trigger must
    answer 202.
(d) trigger latency: p50 of (a)'s triggers.

Targets, as ratios to the floor (the SDK floor when measured) of the same invocation:
(a) <= 2x, (b) >= 0.5x, (c) <= 1.5x and <= 200 MiB, (d) <= 2x; on PostgreSQL 1.5x slack
(3x, 0.333x, 2.25x, 3x); pg-split's (c) within 1.5x of pg's (c).

The machine's cores are shared: the load average is printed and saved with the figures.
`--profile DIR` attaches `py-spy record --format raw` to each target process during each phase
(DIR/<target>-<phase>-<role>.txt, collapsed stacks: `py-spy`'s flamegraph tools or speedscope
read them) and writes the top functions beside it (.top.json). Profiled figures run slower.

Prints a table and writes bench/results/e2e.json (or --out FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Coroutine
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import e2e_clients as clients
from bench.e2e_report import table, verdicts
from bench.e2e_targets import (
    Deployment,
    MemorySampler,
    Running,
    deployment,
    profiled,
    serving,
)
from bench.support import cpu_seconds, fake_provider, percentile

RESULTS = Path(__file__).parent / "results"
WARM_UP_RUNS = 20  # before (a) and (b), on the zero-latency model
WARM_UP_S_B = 2.0
# (c) restarts the target: a few runs first take the first-call costs (LoopLlama imports the
# SDK at its first model call) out of the burst. RSS is sampled throughout.
WARM_UP_RUNS_C = 4
CLIENTS_B = 32
DELAY_C = 1.0


@dataclass
class Fakes:
    """The two fake providers of an invocation (zero latency, and DELAY_C) and their logs."""

    fast: str
    fast_log: Path
    slow: str
    slow_log: Path


def ms(values: list[float], *ps: int) -> dict[str, float]:
    return {f"p{p}": round(percentile(values, p), 2) for p in ps} if values else {}


def server_cpu(running: Running) -> float:
    return sum(cpu_seconds(p.pid) for p in running.processes.values())


def phase_a(runs: list[clients.Run], log: Path) -> dict:
    calls = clients.read_log(log)
    wrong = clients.failures(runs, calls)
    total, net, to_first, between, to_seen = [], [], [], [], []
    for run in runs:
        if clients.check(run, calls.get(run.input)):
            continue
        planner, writer = calls[run.input].planner[0], calls[run.input].writer[0]
        total.append((run.seen - run.sent) * 1000)
        net.append(total[-1] - planner["handled_ms"] - writer["handled_ms"])
        to_first.append((planner["t"] - run.sent) * 1000)
        between.append((writer["t"] - planner["t"]) * 1000)
        to_seen.append((run.seen - writer["t"]) * 1000)
    return {
        **_checked(runs, wrong),
        "overhead_ms": ms(net, 50, 99),
        "run_ms": ms(total, 50, 99),
        "breakdown_p50_ms": {
            "trigger_to_first_call": ms(to_first, 50).get("p50"),
            "first_to_second_call": ms(between, 50).get("p50"),
            "second_call_to_completed_seen": ms(to_seen, 50).get("p50"),
        },
        "trigger_ms": ms([r.trigger_ms for r in runs if r.trigger_status == 202], 50, 99),
        "polls_per_run_p50": percentile([r.polls for r in runs], 50),
    }


def phase_b(runs: list[clients.Run], window: tuple[float, float], log: Path) -> dict:
    wrong = clients.failures(runs, clients.read_log(log))
    counted = [r for r in runs if r.status == "completed" and window[0] <= r.seen <= window[1]]
    started, ended = min(r.sent for r in runs), max(r.seen or r.accepted for r in runs)
    return {
        "clients": CLIENTS_B,
        "seconds": round(window[1] - window[0], 1),
        **_checked(runs, wrong),
        "runs_per_s": round(len(counted) / (window[1] - window[0]), 1),
        "run_ms": ms([(r.seen - r.sent) * 1000 for r in counted], 50, 99),
        # Every poll is a GET the target answers: slow runs are polled more, which slows them.
        "polls_per_s": round(sum(r.polls for r in runs) / (ended - started), 1),
        "polls_per_run_p50": percentile([r.polls for r in runs], 50),
    }


def phase_c(
    runs: list[clients.Run], log: Path, memory: MemorySampler, warm_up: list[clients.Run]
) -> dict:
    calls = clients.read_log(log)
    wrong = clients.failures(warm_up + runs, calls)
    statuses: dict[str, int] = {}
    for run in runs:
        status = str(run.trigger_status or run.trigger_error)
        statuses[status] = statuses.get(status, 0) + 1
    first, last_seen = min(r.sent for r in runs), max(r.seen for r in runs)
    done = all(r.status == "completed" for r in runs)
    # When the model's last answer left (the fake logs arrival and handling time).
    writers = [
        calls[r.input].writer[-1] for r in runs if r.input in calls and calls[r.input].writer
    ]
    answers = [call["t"] + call["handled_ms"] / 1000 for call in writers]
    return {
        **_checked(runs, wrong),
        "trigger_statuses": statuses,
        # None when a run never completed: the figure does not exist.
        "wall_s": round(last_seen - first, 3) if done else None,
        # When some runs went wrong: the same over those that completed, for who optimises.
        "wall_s_of_completed": round(last_seen - first, 3) if last_seen else None,
        "last_model_answer_s": round(max(answers) - first, 3) if answers else None,
        "trigger_ms": ms([r.trigger_ms for r in runs if r.trigger_status == 202], 50, 99),
        **memory.figures(),
    }


def drive(running: Running, profile: Path | None, label: str, work: Coroutine) -> tuple:
    """Run the clients (`work`) against the target, profiled when asked: their result, the
    target's CPU seconds and the client process's CPU seconds meanwhile."""
    server, client = server_cpu(running), time.process_time()
    with profiled(running, profile, label):
        result = asyncio.run(work)
    return result, server_cpu(running) - server, time.process_time() - client


def show(name: str, phase: str, figures: dict) -> None:
    print(json.dumps({name: {phase: figures}}), flush=True)
    for example in figures["failure_examples"]:
        print(f"FAILED {name} ({phase}): {example}", file=sys.stderr, flush=True)


def measure(name: str, args: argparse.Namespace, fakes: Fakes, logs: Path) -> dict:
    """Every requested phase on one target; (c) on a restart pointed at the 1 s model."""
    figures: dict = {"target": name, "loadavg_start": os.getloadavg()}
    phases = set(args.phases)
    with deployment(name) as target:
        if phases & {"a", "b", "d"}:
            with serving(target, fakes.fast, logs) as running:
                figures["warm_up"] = warm_up(target, running, fakes.fast_log)
                show(name, "warm_up", figures["warm_up"])
                if phases & {"a", "d"}:
                    figures["a"] = sequential_runs(target, running, args, fakes.fast_log)
                    show(name, "a", figures["a"])
                if "b" in phases:
                    figures["b"] = concurrent_runs(target, running, args, fakes.fast_log)
                    show(name, "b", figures["b"])
        if "c" in phases:
            with serving(target, fakes.slow, logs) as running:
                figures["c"] = burst_of_runs(target, running, args, fakes.slow_log)
                show(name, "c", figures["c"])
    figures["loadavg_end"] = os.getloadavg()
    return figures


def warm_up(target: Deployment, running: Running, log: Path) -> dict:
    """Runs one at a time before the phases (checked, not counted), so first-call costs stay
    out of the figures, the CPU and the profiles: LoopLlama imports the SDK at its first model
    call (seconds of CPU on a loaded machine), connections open."""
    work = clients.sequential(running.url, target.key, target.workflow_id, WARM_UP_RUNS)
    runs = asyncio.run(work)
    wrong = clients.failures(runs, clients.read_log(log))
    return {"runs": len(runs), "failures": len(wrong), "failure_examples": wrong[:5]}


def _checked(runs: list, wrong: list) -> dict:
    """What every phase reports of its runs' checks against the fake's log."""
    return {
        "runs": len(runs),
        "failures": len(wrong),
        "failure_reasons": clients.reasons(wrong),
        "poll_errors": sum(r.poll_errors for r in runs),
        "failure_examples": wrong[:5],
    }


def sequential_runs(target: Deployment, running: Running, args: Any, log: Path) -> dict:
    """Phase (a), and (d) from its triggers."""
    work = clients.sequential(running.url, target.key, target.workflow_id, args.runs_a)
    runs, cpu, client = drive(running, args.profile, f"{target.name}-a", work)
    figures = phase_a(runs, log)
    figures["server_cpu_ms_per_run"] = round(cpu * 1000 / args.runs_a, 2)
    figures["client_cpu_s"] = round(client, 2)
    return figures


def concurrent_runs(target: Deployment, running: Running, args: Any, log: Path) -> dict:
    """Phase (b)."""
    work = clients.closed_loop(
        running.url, target.key, target.workflow_id, CLIENTS_B, args.seconds_b, WARM_UP_S_B
    )
    (runs, *window), cpu, client = drive(running, args.profile, f"{target.name}-b", work)
    figures = phase_b(runs, tuple(window), log)
    figures["server_cpu_ms_per_run"] = round(cpu * 1000 / max(1, len(runs)), 2)
    figures["client_cpu_s"] = round(client, 2)
    return figures


def burst_of_runs(target: Deployment, running: Running, args: Any, log: Path) -> dict:
    """Phase (c). The restarted target first runs a few at once (checked, not counted, not
    profiled) for its first-call costs; memory is sampled throughout."""
    url, key, workflow = running.url, target.key, target.workflow_id
    with MemorySampler(running.processes) as memory:
        warm = asyncio.run(clients.burst(url, key, workflow, WARM_UP_RUNS_C))
        work = clients.burst(url, key, workflow, args.runs_c)
        runs, _, _ = drive(running, args.profile, f"{target.name}-c", work)
    return phase_c(runs, log, memory, warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="floor,sqlite,pg,pg-split")
    parser.add_argument("--phases", default="a,b,c,d")
    parser.add_argument("--runs-a", type=int, default=200)
    parser.add_argument("--seconds-b", type=float, default=20.0)
    parser.add_argument("--runs-c", type=int, default=500)
    parser.add_argument("--floor", default="sdk", help="floors to measure: sdk, raw or sdk,raw")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy profiles go here")
    parser.add_argument("--logs", type=Path, default=None, help="keep server and fake logs here")
    parser.add_argument("--out", type=Path, default=RESULTS / "e2e.json", help="the JSON results")
    args = parser.parse_args()
    args.phases = args.phases.split(",")
    names = []
    for target in args.targets.split(","):
        names += (
            [f"floor-{kind}" for kind in args.floor.split(",")] if target == "floor" else [target]
        )

    with ExitStack() as stack:
        logs = args.logs or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        logs.mkdir(parents=True, exist_ok=True)
        fast_log, slow_log = logs / "provider-0s.jsonl", logs / "provider-1s.jsonl"
        fakes = Fakes(
            stack.enter_context(fake_provider(0.0, log=fast_log)),
            fast_log,
            stack.enter_context(fake_provider(DELAY_C, log=slow_log)),
            slow_log,
        )
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results = {name: measure(name, args, fakes, logs) for name in names}
    checks = verdicts(results)
    print(table(results, checks))
    report = {
        "command": " ".join(["python -m bench.e2e", *sys.argv[1:]]),
        "started": started,
        "cpus": os.cpu_count(),
        "targets": results,
        "verdicts": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
