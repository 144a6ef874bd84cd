"""Fairness across accounts: round-robin slots and a per-account cap in one process (the
`FairSlots` rules, and the SQLite engine end to end), and on PostgreSQL across two workers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from loopllama.engine.fairness import FairSlots
from loopllama.providers.base import ModelRequest, ModelResponse
from loopllama.providers.fake import reply
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import EngineSettings
from tests.helpers import app_client, wait_for_run
from tests.limits.support import new_key, unique

# -- the rules ---------------------------------------------------------------------------------


async def test_slots_go_round_robin_across_accounts():
    slots = FairSlots(total=1)
    order: list[str] = []
    release = asyncio.Event()

    async def run(account: str, name: str) -> None:
        async with slots.hold(account):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(run("a", "a1"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(run("a", f"a{i}")) for i in range(2, 6)]
    tasks += [asyncio.create_task(run("b", "b1")), asyncio.create_task(run("c", "c1"))]
    tasks.append(asyncio.create_task(run("b", "b2")))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *tasks)
    # After a1: the accounts not served yet, then one of each account in turn.
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]


async def test_an_account_at_its_cap_does_not_hold_back_the_others():
    slots = FairSlots(total=3, per_account=1)
    held: list[str] = []
    gate = asyncio.Event()

    async def run(account: str) -> None:
        async with slots.hold(account):
            held.append(account)
            await gate.wait()

    tasks = [asyncio.create_task(run("a")) for _ in range(3)]
    tasks.append(asyncio.create_task(run("b")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert held == ["a", "b"]  # a's second and third wait for its first; b is not held back
    assert slots.held("a") == 1
    gate.set()
    await asyncio.gather(*tasks)
    assert held == ["a", "b", "a", "a"]
    assert slots.held("a") == 0


async def test_a_cancelled_waiter_gives_its_place_up():
    slots = FairSlots(total=1)
    await slots.acquire("a")
    waiting = asyncio.create_task(slots.acquire("b"))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    slots.release("a")
    await asyncio.wait_for(slots.acquire("c"), timeout=5)  # the slot was not lost to b


# -- the in-process engine (SQLite and PostgreSQL without workers) ------------------------------


@dataclass
class GatedProvider:
    """Every model call records its run input and waits for the test to let it finish."""

    name: str = "fake"
    supports_tools: bool = True
    started: list[str] = field(default_factory=list)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.started.append(request.messages[0].text)
        await self.gate.acquire()
        return reply("done")

    def open(self, calls: int) -> None:
        for _ in range(calls):
            self.gate.release()

    async def aclose(self) -> None:
        return None


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def _engine(settings, **engine):
    settings = settings.model_copy(update={"engine": EngineSettings(**engine)})
    provider = GatedProvider()
    registry = ProviderRegistry(settings)
    registry.register("fake", provider)
    return settings, provider, registry


async def _workflow(http) -> str:
    body = {"name": "f", "model": "fake/t", "crew": [{"role": "solo", "systemPrompt": "S."}]}
    return (await http.post("/v1/workflows", json=body)).json()["data"]["id"]


async def test_a_backlog_does_not_starve_another_account(settings):
    settings, provider, registry = await _engine(settings, max_concurrent_runs=1)
    alice, bob = await new_key(settings, unique("alice")), await new_key(settings, unique("bob"))
    async with (
        app_client(settings, alice, providers=registry) as a,
        app_client(settings, bob, providers=registry, run_engine=False) as b,
    ):
        a_flow, b_flow = await _workflow(a), await _workflow(b)
        for i in range(8):
            await a.post(f"/v1/workflows/{a_flow}/runs", json={"input": f"alice {i}"})
        await _wait_for(lambda: len(provider.started) == 1)
        run = (await b.post(f"/v1/workflows/{b_flow}/runs", json={"input": "bob"})).json()
        # b's trigger reached the engine of `a`'s app through the database: wake it up.
        a._transport.app.state.services.dispatcher.submit(run["data"]["id"])  # type: ignore[attr-defined]
        provider.open(3)
        await _wait_for(lambda: len(provider.started) >= 3)
        provider.open(100)
        await wait_for_run(b, run["data"]["id"], ("completed",), timeout=30)
    # One slot: alice's first run held it; bob's run came next (on PostgreSQL it may tie with
    # alice's next turn), not after alice's backlog.
    assert provider.started[0] == "alice 0"
    assert "bob" in provider.started[1:3]


async def test_the_per_account_cap_leaves_room_for_others(settings):
    settings, provider, registry = await _engine(
        settings, max_concurrent_runs=10, max_concurrent_runs_per_account=2
    )
    alice, bob = await new_key(settings, unique("alice")), await new_key(settings, unique("bob"))
    async with (
        app_client(settings, alice, providers=registry) as a,
        app_client(settings, bob, providers=registry, run_engine=False) as b,
    ):
        a_flow, b_flow = await _workflow(a), await _workflow(b)
        for i in range(6):
            await a.post(f"/v1/workflows/{a_flow}/runs", json={"input": f"alice {i}"})
        run = (await b.post(f"/v1/workflows/{b_flow}/runs", json={"input": "bob"})).json()
        a._transport.app.state.services.dispatcher.submit(run["data"]["id"])  # type: ignore[attr-defined]
        await _wait_for(lambda: "bob" in provider.started)
        alice_started = [s for s in provider.started if s.startswith("alice")]
        assert len(alice_started) == 2  # capped, while 7 slots stayed free
        provider.open(100)
        runs = (await a.get(f"/v1/workflows/{a_flow}/runs")).json()["data"]
        for each in runs:
            await wait_for_run(a, each["id"], ("completed",), timeout=30)  # none waits forever
