"""The live fan-out seam (engine/notify.py): what subscribers receive, a reader that falls
behind, the idle tick, and delta notifications kept under PostgreSQL's payload limit."""

from __future__ import annotations

import asyncio

import orjson

from loopllama.engine import notify
from loopllama.engine.notify import Committed, Delta, LocalHub


async def test_subscribers_get_commits_and_deltas_of_their_run_only():
    hub = LocalHub()
    with hub.subscribe("r1") as one, hub.subscribe("r2") as two:
        hub.on_commit([("r1", 3)])
        hub.publish_delta("r1", {"step_id": "s", "order": 0, "text": "hi"})
        hub.on_commit([("r2", 1), ("r1", 4)])
        assert await one.wait() == [
            Committed(3),
            Delta({"step_id": "s", "order": 0, "text": "hi"}),
            Committed(4),
        ]
        assert await two.wait() == [Committed(1)]
        assert hub.subscribers() == 2
    assert hub.subscribers() == 0
    hub.publish_delta("r1", {"step_id": "s", "order": 0, "text": "nobody listens"})


async def test_a_reader_that_falls_too_far_behind_is_told_to_resume(monkeypatch):
    monkeypatch.setattr(notify, "MAX_BACKLOG", 3)
    hub = LocalHub()
    with hub.subscribe("r") as sub:
        for i in range(5):
            hub.publish_delta("r", {"step_id": "s", "order": 0, "text": str(i)})
        assert sub.overflowed
        assert len(await sub.wait()) == 3


def test_delta_payloads_are_merged_per_step_and_cut_below_the_limit():
    big = 'é"\n' * 5000 + "tail"  # escapes and multibyte characters grow when encoded
    batch = [
        ("r1", {"step_id": "a", "order": 0, "text": "Hel"}),
        ("r1", {"step_id": "a", "order": 0, "text": "lo"}),
        ("r2", {"step_id": "b", "order": 1, "text": "x"}),
        ("r1", {"step_id": "a", "order": 0, "text": big}),
    ]
    payloads = list(notify._payloads(batch))
    assert all(len(p.encode()) < 8000 for p in payloads)
    decoded = [(p.split(":", 1)[0], orjson.loads(p.split(":", 1)[1])) for p in payloads]
    assert decoded[0] == ("r1", {"step_id": "a", "order": 0, "text": "Hello"})
    assert decoded[1] == ("r2", {"step_id": "b", "order": 1, "text": "x"})
    assert len(decoded) > 3  # the big one was cut
    assert "".join(d["text"] for run, d in decoded[2:]) == big
    assert {run for run, _ in decoded[2:]} == {"r1"}


async def test_idle_subscribers_hear_one_shared_tick_and_busy_ones_their_items():
    hub = LocalHub(idle=0.05)
    with hub.subscribe("r1") as one, hub.subscribe("r2") as two:
        ticker = hub._ticker
        assert ticker is not None  # one timer for every subscriber, none of their own
        assert await asyncio.wait_for(one.wait(), 2) == []  # the tick: nothing happened
        hub.on_commit([("r2", 5)])
        assert await asyncio.wait_for(two.wait(), 2) == [Committed(5)]
        assert await asyncio.wait_for(two.wait(), 2) == []
    await asyncio.sleep(0.1)
    assert hub._ticker is None  # nobody listens: the clock stops
