"""GET /v1/usage: rows per UTC day, workflow and model, summed from the recorded steps; and the
SDK's `usage.retrieve` on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from loopllama import AsyncLoopLlama
from tests.helpers import wait_for_run

TODAY = datetime.now(UTC).date()


async def finished_run(client, workflow_id: str, text: str = "go") -> dict:
    run = await client.post(f"/v1/workflows/{workflow_id}/runs", json={"input": text})
    assert run.status_code == 202, run.text
    return await wait_for_run(client, run.json()["data"]["id"], ("completed", "failed"))


async def new_workflow(client, **fields) -> str:
    body = {"name": "u", "model": "fake/one", **fields}
    created = await client.post("/v1/workflows", json=body)
    assert created.status_code == 201, created.text
    return created.json()["data"]["id"]


async def test_usage_rows_per_day_workflow_and_model(client, other_api_key, app):
    crew = [
        {"role": "a", "systemPrompt": "A."},
        {"role": "b", "systemPrompt": "B.", "model": "fake/two"},
    ]
    first = await new_workflow(client, crew=crew)
    second = await new_workflow(client, crew=[{"role": "solo", "systemPrompt": "S."}])
    runs = [await finished_run(client, first), await finished_run(client, first)]
    solo = await finished_run(client, second)
    # A fork re-uses step 0 (not counted again) and executes step 1.
    fork = await client.post(f"/v1/runs/{runs[0]['id']}/fork", json={"from_step": 1})
    forked = await wait_for_run(client, fork.json()["data"]["id"], ("completed",))

    answer = await client.get("/v1/usage")
    assert answer.status_code == 200
    rows = answer.json()["data"]

    def expected(workflow, model, source_runs, order):
        steps = [s for r in source_runs for s in r["steps"] if s["order"] == order]
        return {
            "date": TODAY.isoformat(),
            "workflow_id": workflow,
            "model": model,
            "runs": len(source_runs),
            "tokens_in": sum(s["tokens_in"] for s in steps),
            "tokens_out": sum(s["tokens_out"] for s in steps),
            "cost_usd": None,  # fake models have no price
        }

    want = [
        expected(first, "fake/one", runs, 0),
        expected(first, "fake/two", [*runs, forked], 1),
        expected(second, "fake/one", [solo], 0),
    ]
    assert sorted(rows, key=lambda r: (r["workflow_id"], r["model"])) == sorted(
        want, key=lambda r: (r["workflow_id"], r["model"])
    )
    assert all(r["tokens_in"] > 0 for r in rows)

    # Another account sees none of it.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {other_api_key}"},
    ) as other:
        assert (await other.get("/v1/usage")).json() == {"data": []}

    # A window that ends yesterday holds nothing of today.
    start, end = TODAY - timedelta(days=10), TODAY - timedelta(days=1)
    past = await client.get(f"/v1/usage?start={start}&end={end}")
    assert past.json() == {"data": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-13-01", "Invalid start: expected a date as YYYY-MM-DD"),
        ("end=yesterday", "Invalid end: expected a date as YYYY-MM-DD"),
        ("start=2026-05-02&end=2026-05-01", "Invalid range: start must not be after end"),
        ("start=2026-01-01&end=2026-04-03", "Invalid range: at most 92 days"),
    ],
)
async def test_bad_ranges_are_400(client, query, message):
    answer = await client.get(f"/v1/usage?{query}")
    assert answer.status_code == 400
    assert answer.json() == {"error": message}


async def test_92_days_is_allowed(client):
    answer = await client.get("/v1/usage?start=2026-01-01&end=2026-04-02")  # both included
    assert answer.status_code == 200


async def test_the_sdk_retrieves_usage(client, app, api_key):
    workflow = await new_workflow(client, crew=[{"role": "solo", "systemPrompt": "S."}])
    run = await finished_run(client, workflow)
    async with AsyncLoopLlama(
        api_key=api_key, base_url="http://testserver", transport=httpx.ASGITransport(app=app)
    ) as sdk:
        rows = await sdk.usage.retrieve(start=TODAY - timedelta(days=6), end=TODAY)
        also = await sdk.usage.retrieve()
    assert [(r.date, r.workflow_id, r.model, r.runs) for r in rows] == [
        (TODAY.isoformat(), workflow, "fake/one", 1)
    ]
    assert rows[0].tokens_in == run["tokens_in"] and rows[0].cost_usd is None
    assert [r.to_dict() for r in also] == [r.to_dict() for r in rows]
