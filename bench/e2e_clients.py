"""The clients of bench.e2e: trigger a run, poll it until it ends, and check every run against
the fake provider's request log. One asyncio loop and one aiohttp session (keep-alive) per
phase, so the load generator costs the shared cores as little as it can."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from loopllama.engine.prompts import DEFAULT_CREW

PLANNER, WRITER = (agent["systemPrompt"] for agent in DEFAULT_CREW)
FINAL = ("completed", "failed", "cancelled")


@dataclass
class Run:
    """One run as its client saw it; times are time.time(), the fake provider's clock."""

    input: str
    sent: float = 0.0  # trigger sent
    accepted: float = 0.0  # trigger answered
    trigger_status: int = 0
    trigger_error: str = ""
    id: str = ""
    status: str = ""  # the last status seen
    output: str | None = None
    seen: float = 0.0  # the end seen by a poll
    polls: int = 0
    poll_errors: int = 0  # polls answered other than 200 (or not at all); the run goes on

    @property
    def trigger_ms(self) -> float:
        return (self.accepted - self.sent) * 1000


@dataclass(frozen=True)
class Poll:
    """Poll after `first` s, the wait growing by `growth` up to `cap` s; a run not ended
    `give_up` s after its 202 counts as not completed."""

    first: float
    cap: float
    growth: float = 1.5
    give_up: float = 120.0


POLL_A = Poll(0.002, 0.005)
POLL_B = Poll(0.002, 0.050)
POLL_C = Poll(1.0, 1.0, give_up=600.0)  # a slow target still gets its (c) figure


def session(target_key: str, connections: int) -> aiohttp.ClientSession:
    """Keep-alive connections, at most `connections` (0: no limit)."""
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"Authorization": f"Bearer {target_key}"}
    timeout = aiohttp.ClientTimeout(total=120.0)
    return aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout)


def new_run(label: str) -> Run:
    """A unique input, so the log's calls can be matched to their run."""
    return Run(input=f"e2e {label} {uuid.uuid4().hex}")


async def trigger(http: aiohttp.ClientSession, url: str, workflow_id: str, run: Run) -> bool:
    run.sent = time.time()
    try:
        async with http.post(
            f"{url}/v1/workflows/{workflow_id}/runs", json={"input": run.input}
        ) as response:
            body = await response.read()
            run.accepted = time.time()
            run.trigger_status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        run.accepted, run.trigger_error = time.time(), repr(exc)
        return False
    if response.status != 202:
        run.trigger_error = body[:200].decode(errors="replace")
        return False
    run.id = json.loads(body)["data"]["id"]
    return True


async def follow(http: aiohttp.ClientSession, url: str, run: Run, poll: Poll) -> None:
    """Poll `GET /v1/runs/{id}` until the run ends (or `poll.give_up` passes)."""
    wait, deadline = poll.first, run.accepted + poll.give_up
    while time.time() < deadline:
        await asyncio.sleep(wait)
        run.polls += 1
        try:
            async with http.get(f"{url}/v1/runs/{run.id}") as response:
                body = await response.read()
                now = time.time()
        except (aiohttp.ClientError, TimeoutError):
            run.status, run.poll_errors = "poll error", run.poll_errors + 1
            continue
        if response.status != 200:
            run.status, run.poll_errors = f"poll {response.status}", run.poll_errors + 1
            continue
        data = json.loads(body)["data"]
        run.status = data["status"]
        if run.status in FINAL:
            run.seen, run.output = now, data["output"]
            return
        wait = min(poll.cap, wait * poll.growth)


async def one_run(
    http: aiohttp.ClientSession, url: str, workflow_id: str, label: str, poll: Poll
) -> Run:
    run = new_run(label)
    if await trigger(http, url, workflow_id, run):
        await follow(http, url, run, poll)
    return run


async def sequential(url: str, key: str, workflow_id: str, count: int) -> list[Run]:
    """Phase (a): one client, one run at a time."""
    async with session(key, 1) as http:
        return [await one_run(http, url, workflow_id, "a", POLL_A) for _ in range(count)]


async def closed_loop(
    url: str, key: str, workflow_id: str, clients: int, seconds: float, warm_up: float
) -> tuple[list[Run], float, float]:
    """Phase (b): `clients` clients, each running back to back until the end; the window
    [start + warm_up, end] is the one counted. Runs under way at the end are still followed
    (and checked)."""
    runs: list[Run] = []
    start = time.time()
    window = (start + warm_up, start + warm_up + seconds)
    async with session(key, clients) as http:

        async def client() -> None:
            while time.time() < window[1]:
                runs.append(await one_run(http, url, workflow_id, "b", POLL_B))

        await asyncio.gather(*(client() for _ in range(clients)))
    return runs, *window


async def burst(url: str, key: str, workflow_id: str, count: int) -> list[Run]:
    """Phase (c): `count` runs triggered at once, each followed by its own poller."""
    # One connection per client, as `count` separate clients would have.
    async with session(key, 0) as http:
        runs = (one_run(http, url, workflow_id, "c", POLL_C) for _ in range(count))
        return list(await asyncio.gather(*runs))


# -- checks against the fake provider's log ---------------------------------------------------


@dataclass
class Calls:
    planner: list[dict]
    writer: list[dict]


def read_log(path: Path) -> dict[str, Calls]:
    """The model calls in the fake provider's log, by run input."""
    calls: dict[str, Calls] = {}
    prefix, middle = "Original request:\n", "\n\nPrior agent output:\n"
    for line in path.read_text().splitlines():
        call = json.loads(line)
        if call["system"] == PLANNER:
            calls.setdefault(call["user"], Calls([], [])).planner.append(call)
        elif call["system"] == WRITER and call["user"].startswith(prefix):
            run_input = call["user"][len(prefix) :].split(middle, 1)[0]
            calls.setdefault(run_input, Calls([], [])).writer.append(call)
    return calls


def check(run: Run, calls: Calls | None) -> str:
    """Why the run is wrong, or "" when it is right: triggered (202), completed, exactly one
    planner call with the run's input then one writer call with the planner's answer in its
    prompt, and the writer's answer as the output. The fake answers "echo: <user text>"."""
    if run.trigger_status != 202:
        return f"trigger answered {run.trigger_status or run.trigger_error}"
    if run.status != "completed":
        return f"run ended {run.status or 'never'}"
    if calls is None or len(calls.planner) != 1 or len(calls.writer) != 1:
        planner = len(calls.planner) if calls else 0
        writer = len(calls.writer) if calls else 0
        return f"{planner} planner and {writer} writer calls, not 1 and 1"
    planner, writer = calls.planner[0], calls.writer[0]
    if writer["t"] < planner["t"]:
        return "the writer was called before the planner"
    if f"--- planner ---\necho: {run.input}" not in writer["user"]:
        return "the writer's prompt lacks the planner's answer"
    if run.output != f"echo: {writer['user']}":
        return "the output is not the writer's answer"
    return ""


def failures(runs: list[Run], log: dict[str, Calls]) -> list[str]:
    return [f"{run.input}: {why}" for run in runs if (why := check(run, log.get(run.input)))]


def reasons(wrong: list[str]) -> dict[str, int]:
    """How many runs went wrong for each reason."""
    return dict(collections.Counter(line.split(": ", 1)[1] for line in wrong).most_common())
