"""`loopllama webhooks list | create | deliveries | redeliver` against the app in process."""

from __future__ import annotations

from loopllama.providers.fake import reply
from tests.cli.conftest import invoke  # noqa: F401 (a fixture)
from tests.helpers import wait_for_run
from tests.webhooks.support import wait_deliveries


async def test_create_list_deliveries_redeliver(invoke, client, fake_provider, hook):  # noqa: F811
    empty = await invoke("webhooks", "list")
    assert empty.exit_code == 0 and "No webhook endpoints yet" in empty.stderr

    created = await invoke(
        "webhooks", "create", "--url", hook.url, "--event", "run.completed", "--description", "d"
    )
    assert created.exit_code == 0, created.stderr
    secret = created.stdout.rsplit("Signing secret (shown once, keep it): ", 1)[1].strip()
    assert secret.startswith("whsec_")
    hook.secrets.append(secret)

    listed = await invoke("webhooks", "list", "--json")
    [endpoint] = listed.json()
    assert endpoint["url"] == hook.url and "secret" not in endpoint
    table = (await invoke("webhooks", "list")).stdout
    assert endpoint["id"] in table and "run.completed" in table and secret not in table

    fake_provider.enqueue(reply("x", 1, 1), reply("y", 1, 1))
    workflow = (await client.post("/v1/workflows", json={"name": "w", "model": "fake/t"})).json()
    run = await client.post(f"/v1/workflows/{workflow['data']['id']}/runs", json={"input": "i"})
    await wait_for_run(client, run.json()["data"]["id"])
    await wait_deliveries(client, endpoint["id"], lambda ds: ds and ds[0]["status"] == "succeeded")

    deliveries = await invoke("webhooks", "deliveries", endpoint["id"], "--json")
    [delivery] = deliveries.json()
    assert delivery["event_type"] == "run.completed" and delivery["attempts"] == 1
    text = (await invoke("webhooks", "deliveries", endpoint["id"])).stdout
    assert delivery["id"] in text and "succeeded" in text

    again = await invoke("webhooks", "redeliver", endpoint["id"], delivery["id"])
    assert again.exit_code == 0 and delivery["id"] in again.stdout
    received = await hook.wait_for(2)
    assert {r.id for r in received} == {delivery["id"]}
    assert all(r.verified_with == secret for r in hook.verified())


async def test_bad_input_and_unknown_ids(invoke):  # noqa: F811
    bad = await invoke("webhooks", "create", "--url", "http://x.example", "--event", "run.nope")
    assert bad.exit_code == 2 and "run.nope" in bad.stderr
    missing = await invoke("webhooks", "deliveries", "nope")
    assert missing.exit_code == 3 and "not found" in missing.stderr.lower()
    refused = await invoke(
        "webhooks", "create", "--url", "http://10.0.0.1/", "--event", "run.completed"
    )
    assert refused.exit_code == 3 and "private address" in refused.stderr
