"""In a real browser: a webhook endpoint created from the page (its secret shown once, copied
with the button), a run's delivery listed, and redelivered."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.console.support import api, sign_in


def test_create_an_endpoint_copy_its_secret_see_and_redeliver_a_delivery(page, live, receiver):
    sign_in(page, live.url, live.api_key)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill("not a url")
    page.get_by_role("button", name="Add endpoint").click()
    worded = api(live.url, live.api_key).post(
        "/v1/webhooks", {"url": "not a url", "events": ["run.completed"]}
    )
    assert worded.status_code == 400
    expect(page.locator("#hook-url-error")).to_have_text(worded.json()["error"])

    page.get_by_label("URL").fill(f"{receiver.url}/hooks")
    page.get_by_label("run.failed").uncheck()
    page.get_by_label("run.waiting_input").uncheck()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#secret")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    page.get_by_role("button", name="Copy secret").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret.text_content()

    flow = api(live.url, live.api_key).post(
        "/v1/workflows",
        json={
            "name": "Hooked",
            "model": "claude-test",
            "crew": [{"role": "a", "systemPrompt": "p"}],
        },
    )
    run = (
        api(live.url, live.api_key)
        .post(f"/v1/workflows/{flow.json()['data']['id']}/runs", {"input": "go"})
        .json()["data"]
    )
    (first,) = receiver.wait_for("/hooks")
    assert first["body"]["type"] == "run.completed"

    page.get_by_role("table").get_by_role("link", name=f"{receiver.url}/hooks").click()
    row = page.get_by_role("row", name=re.compile(run["id"]))
    deadline = time.monotonic() + 20
    while "succeeded" not in (row.text_content() if row.count() else ""):
        assert time.monotonic() < deadline, "the delivery never showed as succeeded"
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(200)
    expect(row).to_contain_text("run.completed")
    row.get_by_role("button", name=re.compile("^Redeliver")).click()
    receiver.wait_for("/hooks", count=2)
