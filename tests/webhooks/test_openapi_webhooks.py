"""The OpenAPI document describes the webhook routes as they answer."""

from __future__ import annotations

import jsonschema

from loopllama.providers.fake import reply
from tests.api.test_openapi import _resolve
from tests.helpers import wait_for_run
from tests.webhooks.support import create_endpoint, wait_deliveries

EXPECTED = {
    ("/v1/webhooks", "get", "200"),
    ("/v1/webhooks", "post", "201"),
    ("/v1/webhooks/{webhook_id}", "get", "200"),
    ("/v1/webhooks/{webhook_id}", "patch", "200"),
    ("/v1/webhooks/{webhook_id}", "delete", "204"),
    ("/v1/webhooks/{webhook_id}/rotate_secret", "post", "200"),
    ("/v1/webhooks/{webhook_id}/deliveries", "get", "200"),
    ("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", "post", "202"),
}


async def test_webhook_routes_are_documented_and_answer_as_documented(client, fake_provider, hook):
    document = (await client.get("/openapi.json")).json()
    for path, method, status in EXPECTED:
        responses = document["paths"][path][method]["responses"]
        assert status in responses and "401" in responses and "422" not in responses
    assert "WebhookCreate" in document["components"]["schemas"]

    def check(path, method, status, body):
        content = document["paths"][path][method]["responses"][str(status)]["content"]
        jsonschema.validate(body, _resolve(document, content["application/json"]["schema"]))

    endpoint = await create_endpoint(client, hook, events=["run.completed"])
    check("/v1/webhooks", "post", 201, {"data": endpoint})
    hook_path = f"/v1/webhooks/{endpoint['id']}"
    check("/v1/webhooks", "get", 200, (await client.get("/v1/webhooks")).json())
    check("/v1/webhooks/{webhook_id}", "get", 200, (await client.get(hook_path)).json())
    patched = await client.patch(hook_path, json={"description": "d"})
    check("/v1/webhooks/{webhook_id}", "patch", 200, patched.json())
    rotated = await client.post(f"{hook_path}/rotate_secret")
    check("/v1/webhooks/{webhook_id}/rotate_secret", "post", 200, rotated.json())

    fake_provider.enqueue(reply("x", 1, 1))
    workflow = (await client.post("/v1/workflows", json={"name": "w", "model": "fake/t"})).json()
    run = await client.post(f"/v1/workflows/{workflow['data']['id']}/runs", json={"input": "i"})
    await wait_for_run(client, run.json()["data"]["id"])
    [delivery] = await wait_deliveries(client, endpoint["id"], lambda ds: len(ds) == 1)
    listed = (await client.get(f"{hook_path}/deliveries")).json()
    check("/v1/webhooks/{webhook_id}/deliveries", "get", 200, listed)
    again = await client.post(f"{hook_path}/deliveries/{delivery['id']}/redeliver")
    check("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", "post", 202, again.json())
