"""The servers bench.e2e measures: the floor, `loopllama serve` on SQLite or PostgreSQL, and
`serve --no-worker` + `worker`; their lifecycle, memory sampling and py-spy profiles."""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port

from bench.support import (
    cli,
    create_workflow,
    environment,
    rss_kib,
    scratch_database,
    start,
    start_server,
    stop,
    wait_for_port,
)
from loopllama.engine.prompts import DEFAULT_CREW

PY_SPY = Path(sys.executable).with_name("py-spy")
BACKENDS = {"sqlite": "sqlite", "pg": "postgresql", "pg-split": "postgresql"}


@dataclass
class Deployment:
    """What lasts across a target's phases: its database, API key and workflow."""

    name: str  # floor-sdk, floor-raw, sqlite, pg, pg-split
    database_url: str | None = None
    key: str = "floor"  # the floor checks no key
    workflow_id: str = "floor"

    @property
    def is_floor(self) -> bool:
        return self.name.startswith("floor")


@dataclass
class Running:
    """A target serving: the URL clients use, and its processes by role."""

    url: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)


@contextmanager
def deployment(name: str) -> Iterator[Deployment]:
    """A fresh deployment: for LoopLlama a scratch database and an API key (removed after)."""
    if name.startswith("floor"):
        yield Deployment(name)
        return
    with scratch_database(BACKENDS[name]) as url:
        env = environment(url, "http://127.0.0.1:9")
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        yield Deployment(name, url, key, workflow_id="")


@contextmanager
def serving(target: Deployment, provider_url: str, logs: Path) -> Iterator[Running]:
    """The target's process(es), answered by the fake provider at `provider_url`."""
    log = logs / f"{target.name}.log"
    if target.is_floor:
        port = free_port()
        client = target.name.removeprefix("floor-")
        command = ["-m", "bench.floor", "--port", str(port), "--provider", provider_url]
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, *command, "--client", client],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port)
            yield Running(f"http://127.0.0.1:{port}", {"floor": process})
        finally:
            stop(process)
        return
    assert target.database_url is not None
    env = environment(target.database_url, provider_url)
    split = target.name == "pg-split"
    server, url = start_server(env, *(("--no-worker",) if split else ()), log=log)
    processes = {"serve": server}
    try:
        if split:
            processes["worker"] = start(env, "worker", log=log)
        if not target.workflow_id:
            # The default crew's prompts, which the floor sends too.
            target.workflow_id = create_workflow(url, target.key, crew=DEFAULT_CREW)
        yield Running(url, processes)
    finally:
        stop(*processes.values())


class MemorySampler:
    """Peak VmRSS of each process, sampled every `interval` s in a thread (so a busy client
    event loop does not delay the samples); the peak of the sum too."""

    def __init__(self, processes: dict[str, subprocess.Popen], interval: float = 0.05) -> None:
        self.processes = processes
        self.interval = interval
        self.peak_kib = dict.fromkeys(processes, 0)
        self.peak_sum_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0
            for role, process in self.processes.items():
                try:
                    kib = rss_kib(process.pid)
                except (OSError, RuntimeError):  # exited
                    continue
                self.peak_kib[role] = max(self.peak_kib[role], kib)
                total += kib
            self.peak_sum_kib = max(self.peak_sum_kib, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict:
        return {
            "peak_rss_mib": round(self.peak_sum_kib / 1024, 1),
            "peak_rss_mib_each": {role: round(k / 1024, 1) for role, k in self.peak_kib.items()},
        }


@contextmanager
def profiled(running: Running, directory: Path | None, label: str) -> Iterator[None]:
    """`py-spy record` attached to each process of the target for the block; then the top
    functions are written beside each profile. Nothing without `directory`."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    spies = {}
    for role, process in running.processes.items():
        out = directory / f"{label}-{role}.txt"
        # --nonblocking: sample without pausing the process, so it runs at its own speed.
        command = [str(PY_SPY), "record", "--pid", str(process.pid), "--format", "raw"]
        command += ["--rate", "200", "--nonblocking", "--full-filenames", "-o", str(out)]
        spies[out] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the phase starts
    try:
        yield
    finally:
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for out, spy in spies.items():
            spy.wait(timeout=60)
            if out.exists():
                top = top_functions(out)
                out.with_suffix(".top.json").write_text(json.dumps(top, indent=2) + "\n")
                print(f"profile {out}, {top['samples']} samples (% own + children, % own):")
                for order in ("by_total", "by_own", "loopllama_by_total"):
                    for row in top[order]:
                        print(f"  {row['total_pct']:5.1f} {row['own_pct']:5.1f}  {row['function']}")
                    print("  --")


# A frame on this share of the busiest frame's samples or more is the trunk: the entry point,
# click, uvicorn.run, the loop runner (other threads and greenlets hold the other samples).
TRUNK = 0.9


def top_functions(collapsed: Path, count: int = 10) -> dict[str, list[dict]]:
    """The functions with the most samples on the stack (own + children), and with the most
    samples of their own, in a py-spy raw (collapsed stacks) file; shares of all samples
    taken. The trunk (the entry point, click, uvicorn.run, the loop runner: on nearly every
    stack) is left out of the first list."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    # One stack per line, "frame;frame;... count"; a frame named after generated source
    # (a lambda's text) can hold newlines, so a stack ends at the line that ends with a count.
    for stack, samples in re.findall(r"^(.+?) (\d+)$", collapsed.read_text(), re.M | re.S):
        n = int(samples)
        total += n
        # "function (/path/to/file.py:line)": the function counts once per stack, any line.
        frames = [_short(frame.rsplit(":", 1)[0]) + ")" for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    busiest = max(inclusive.values(), default=0)
    branches = [frame for frame, n in inclusive.most_common() if n < TRUNK * busiest]

    def row(frame: str) -> dict:
        share = 100 / max(1, total)
        total_pct, own_pct = round(inclusive[frame] * share, 1), round(own[frame] * share, 1)
        return {"function": frame, "total_pct": total_pct, "own_pct": own_pct}

    ours = [frame for frame in branches if "(loopllama/" in frame]  # see _short
    return {
        "samples": total,
        "by_total": [row(frame) for frame in branches[:count]],
        "by_own": [row(frame) for frame, _ in own.most_common(count)],
        # Past the framework's middleware chain: where LoopLlama's own code spends it.
        "loopllama_by_total": [row(frame) for frame in ours[:count]],
    }


def _short(frame: str) -> str:
    """`f (/venv/.../site-packages/pkg/mod.py` -> `f (pkg/mod.py`; LoopLlama's own files (from
    any checkout) -> `f (loopllama/...`. py-spy's own shortening is not reliable for them."""
    name, _, path = frame.partition(" (")
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":  # the standard library: drop "11/"
                path = path.split("/", 1)[-1]
            break
    return f"{name} ({path}"
