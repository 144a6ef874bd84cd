"""Deliveries end to end, on SQLite and PostgreSQL: a run's events reach a real receiver on
127.0.0.1, signed so that `standardwebhooks` accepts every one; failures are retried on the
(short) schedule with the same webhook-id; redeliver; disabled, deleted and filtered
endpoints; a rotated secret; no secret in any log line."""

from __future__ import annotations

import asyncio
import logging

from loopllama.providers.fake import reply
from tests.helpers import wait_for_run
from tests.webhooks.support import create_endpoint, deliveries, wait_deliveries

CREW = [{"role": "writer", "systemPrompt": "Write it."}]
PLAIN_RUN = ["run.queued", "run.started", "step.started", "step.completed", "run.completed"]


async def _workflow(client) -> dict:
    body = {"name": "hooks", "model": "fake/test", "crew": CREW}
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def _run(client, fake_provider, workflow=None) -> dict:
    fake_provider.enqueue(reply("the text", 3, 2))
    workflow = workflow or await _workflow(client)
    response = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
    assert response.status_code == 202, response.text
    return await wait_for_run(client, response.json()["data"]["id"], ("completed", "failed"))


async def test_every_event_arrives_signed_with_the_event_as_body(client, fake_provider, hook):
    endpoint = await create_endpoint(client, hook)
    run = await _run(client, fake_provider)

    received = await hook.wait_for(len(PLAIN_RUN))
    assert all(r.verified_with == endpoint["secret"] for r in hook.verified())
    assert sorted(r.json["type"] for r in received) == sorted(PLAIN_RUN)
    events = (await client.get(f"/v1/runs/{run['id']}/events")).json()["data"]
    by_type = {e["type"]: e for e in events}
    for delivery in received:
        body = delivery.json
        assert set(body) == {"type", "timestamp", "data"}
        assert body["timestamp"] == by_type[body["type"]]["created_at"]
        assert body["data"] == by_type[body["type"]]["data"]
        assert delivery.path == "/hook"
        assert delivery.headers["content-type"] == "application/json"
    log = await wait_deliveries(
        client, endpoint["id"], lambda ds: all(d["status"] == "succeeded" for d in ds)
    )
    assert len(log) == len(PLAIN_RUN)
    assert {d["id"] for d in log} == {r.id for r in received}
    assert [d["event_type"] for d in log] == list(reversed(PLAIN_RUN))  # newest first
    for d in log:
        assert d["run_id"] == run["id"] and d["attempts"] == 1
        assert d["last_status_code"] == 200 and d["last_error"] is None
        assert d["next_attempt_at"] is None and d["delivered_at"] is not None


async def test_only_subscribed_types_and_the_chosen_workflow(client, fake_provider, hook):
    mine, other = await _workflow(client), await _workflow(client)
    endpoint = await create_endpoint(client, hook, events=["run.completed"], workflow_id=mine["id"])
    await _run(client, fake_provider, other)
    run = await _run(client, fake_provider, mine)

    [delivery] = await hook.wait_for(1)
    await asyncio.sleep(0.5)  # nothing else is coming
    assert len(hook.received) == 1
    assert delivery.json["type"] == "run.completed"
    assert delivery.json["data"]["id"] == run["id"]
    [logged] = await deliveries(client, endpoint["id"])
    assert logged["id"] == delivery.id


async def test_failures_are_retried_with_the_same_webhook_id(client, fake_provider, hook):
    hook.fail_first = 2
    hook.answer = b"x" * 5000
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)

    first, second, third = await hook.wait_for(3)
    assert first.id == second.id == third.id
    assert all(r.verified_with for r in hook.verified())
    # Each attempt is signed at its own time, over the same body.
    assert first.body == second.body == third.body
    [done] = await wait_deliveries(
        client, endpoint["id"], lambda ds: ds and ds[0]["status"] == "succeeded"
    )
    assert done["attempts"] == 3 and done["last_status_code"] == 200


async def test_a_delivery_fails_after_the_schedule_and_keeps_the_error(client, fake_provider, hook):
    hook.status = 503
    hook.answer = b"y" * 5000  # only the first KiB is kept
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)

    [failed] = await wait_deliveries(
        client, endpoint["id"], lambda ds: ds and ds[0]["status"] == "failed"
    )
    assert failed["attempts"] == 4  # the first attempt and the three retries of the schedule
    assert len(hook.received) == 4 and len({r.id for r in hook.received}) == 1
    assert failed["last_status_code"] == 503
    assert failed["last_error"] == "HTTP 503: " + "y" * 1024
    assert failed["next_attempt_at"] is None and failed["delivered_at"] is None


async def test_redeliver_makes_one_more_attempt_with_the_same_id(client, fake_provider, hook):
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)
    [original] = await hook.wait_for(1)
    [delivery] = await wait_deliveries(
        client, endpoint["id"], lambda ds: ds and ds[0]["status"] == "succeeded"
    )

    response = await client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver"
    )
    assert response.status_code == 202, response.text
    assert response.json()["data"]["id"] == delivery["id"]
    assert response.json()["data"]["status"] == "pending"

    _, again = await hook.wait_for(2)
    assert again.id == original.id and again.body == original.body
    assert again.verified_with == endpoint["secret"]
    await wait_deliveries(
        client,
        endpoint["id"],
        lambda ds: ds[0]["attempts"] == 2 and ds[0]["status"] == "succeeded",
    )

    # A failed one-shot redelivery of a finished delivery does not restart the schedule.
    hook.status = 500
    response = await client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver"
    )
    assert response.status_code == 202
    [failed] = await wait_deliveries(client, endpoint["id"], lambda ds: ds[0]["status"] == "failed")
    assert failed["attempts"] == 3 and len(hook.received) == 3


async def test_redeliver_checks_ownership_and_state(client, other_api_key, fake_provider, hook):
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)
    [delivery] = await wait_deliveries(client, endpoint["id"], lambda ds: len(ds) == 1)
    path = f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver"

    other = {"Authorization": f"Bearer {other_api_key}"}
    for response in (
        await client.post(path, headers=other),
        await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=other),
        await client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/nope/redeliver"),
    ):
        assert (response.status_code, response.json()) == (404, {"error": "Not found"})

    await client.patch(f"/v1/webhooks/{endpoint['id']}", json={"status": "disabled"})
    response = await client.post(path)
    assert (response.status_code, response.json()) == (
        409,
        {"error": "Webhook endpoint is disabled"},
    )


async def test_a_disabled_endpoint_receives_nothing(client, fake_provider, hook):
    endpoint = await create_endpoint(client, hook)
    await client.patch(f"/v1/webhooks/{endpoint['id']}", json={"status": "disabled"})
    live = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)

    [arrived] = await hook.wait_for(1)
    await asyncio.sleep(0.5)
    assert len(hook.received) == 1 and arrived.verified_with == live["secret"]
    assert await deliveries(client, endpoint["id"]) == []


async def test_disabling_stops_pending_retries(client, fake_provider, hook):
    hook.status = 500
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)
    await hook.wait_for(1)
    await client.patch(f"/v1/webhooks/{endpoint['id']}", json={"status": "disabled"})

    [delivery] = await wait_deliveries(
        client, endpoint["id"], lambda ds: ds and ds[0]["status"] == "failed"
    )
    assert delivery["last_error"] == "endpoint is disabled"
    assert len(hook.received) <= 2  # at most an attempt already claimed when it was disabled


async def test_deleting_an_endpoint_drops_its_pending_deliveries(client, fake_provider, hook):
    hook.status = 500
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)
    await hook.wait_for(1)

    assert (await client.delete(f"/v1/webhooks/{endpoint['id']}")).status_code == 204
    count = len(hook.received)
    await asyncio.sleep(1.2)  # four retry intervals
    assert len(hook.received) <= count + 1  # at most the attempt in flight at the deletion
    response = await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries")
    assert response.status_code == 404


async def test_a_rotated_secret_signs_every_later_attempt(client, fake_provider, hook):
    hook.fail_first = 1
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)
    [first] = await hook.wait_for(1)
    response = await client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret")
    assert response.status_code == 200
    new_secret = response.json()["data"]["secret"]
    assert new_secret != endpoint["secret"] and new_secret.startswith("whsec_")
    hook.secrets.append(new_secret)

    _, retry = await hook.wait_for(2)
    assert first.verified_with == endpoint["secret"]
    assert retry.verified_with == new_secret and retry.id == first.id


async def test_no_secret_in_any_log_line(client, fake_provider, hook, caplog):
    caplog.set_level(logging.DEBUG)
    hook.fail_first = 1
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    rotated = (await client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret")).json()["data"]
    hook.secrets.append(rotated["secret"])
    await _run(client, fake_provider)
    received = await hook.wait_for(2)

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "attempt 1 failed" in text  # the failure was logged...
    for secret in (endpoint["secret"], rotated["secret"]):  # ...without a secret
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
    for delivery in received:
        assert delivery.headers["webhook-signature"] not in text


async def test_redeliver_during_an_attempt_in_flight_is_not_lost(client, fake_provider, hook):
    hook.delay = 1.0  # the first attempt is still waiting for its answer
    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    await _run(client, fake_provider)
    [first] = await hook.wait_for(1)
    [delivery] = await deliveries(client, endpoint["id"])
    assert delivery["status"] == "pending"  # in flight

    response = await client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver"
    )
    assert response.status_code == 202

    _, second = await hook.wait_for(2)
    assert second.id == first.id
    [done] = await wait_deliveries(
        client, endpoint["id"], lambda ds: ds[0]["status"] == "succeeded"
    )
    assert done["attempts"] == 2
