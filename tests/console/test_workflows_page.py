"""In a real browser: sign in and out, create a workflow through the form (the API's validation
message next to the field), edit it as JSON, pause, lock, restore a version, delete."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.console.support import api, sign_in


def test_sign_in_keeps_the_key_in_session_storage_only_and_sign_out_clears_it(page, live):
    page.goto(f"{live.url}/")  # redirected to the console
    assert page.url == f"{live.url}/console"
    page.get_by_label("API key").fill("ll_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        api(live.url, "ll_wrong").get("/v1/workflows").json()["error"]
    )
    # Keyboard only: type the key, Enter submits.
    page.get_by_label("API key").fill(live.api_key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('loopllama.apiKey')") == live.api_key
    assert page.context.cookies() == []
    assert live.api_key not in page.url
    assert live.api_key not in page.content()
    # Tab reaches the navigation; Enter follows the link.
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Workflows")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('loopllama.apiKey')") is None


def test_create_shows_the_api_message_next_to_the_field_then_creates(page, live):
    sign_in(page, live.url, live.api_key)
    page.get_by_role("link", name="New workflow").click()
    page.get_by_label("Role").fill("writer")
    page.get_by_label("System prompt").fill("Write a haiku.")
    page.get_by_role("button", name="Create workflow").click()
    # Sent as is: the message is the API's, under the empty Name field.
    message = "String must contain at least 1 character(s)"
    expect(page.locator("#wf-name-error")).to_have_text(message)
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Name", exact=True).fill("Haiku")
    page.get_by_label("Model", exact=True).fill("nonsense/model-x")
    page.get_by_role("button", name="Create workflow").click()
    worded = api(live.url, live.api_key).post(
        "/v1/workflows",
        json={
            "name": "x",
            "model": "nonsense/model-x",
            "crew": [{"role": "r", "systemPrompt": "p"}],
        },
    )
    assert worded.status_code == 400
    expect(page.locator("#wf-model-error")).to_have_text(worded.json()["error"])
    page.get_by_label("Model", exact=True).fill("claude-test")
    page.get_by_role("button", name="Add agent").click()
    page.locator("#agent-1-role").fill("critic")
    page.locator("#agent-1-prompt").fill("Critique the haiku.")
    page.get_by_role("button", name="Create workflow").click()
    expect(page.get_by_role("heading", name="Haiku")).to_be_visible()
    workflow_id = page.url.rsplit("/", 1)[-1]
    created = api(live.url, live.api_key).get(f"/v1/workflows/{workflow_id}").json()["data"]
    assert [agent["role"] for agent in created["crew"]] == ["writer", "critic"]
    assert created["model"] == "claude-test"
    page.get_by_role("link", name="Workflows").click()
    row = page.get_by_role("row", name=re.compile("Haiku"))
    expect(row).to_contain_text("writer, critic")
    expect(row).to_contain_text("active")


def test_edit_as_json_pause_lock_restore_and_delete(page, live):
    client = api(live.url, live.api_key)
    workflow = client.post(
        "/v1/workflows",
        json={
            "name": "Editable",
            "model": "claude-test",
            "crew": [{"role": "a", "systemPrompt": "p"}],
        },
    ).json()["data"]
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/workflows/{workflow['id']}")
    page.get_by_role("tab", name="JSON").click()
    definition = page.get_by_label("Definition (JSON)")
    text = definition.input_value().replace('"systemPrompt": "p"', '"systemPrompt": "p2"')
    definition.fill(text)
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#wf-meta")).to_contain_text("version 2 ")
    assert (
        client.get(f"/v1/workflows/{workflow['id']}").json()["data"]["crew"][0]["systemPrompt"]
        == "p2"
    )

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Activate")).to_be_visible()
    assert client.get(f"/v1/workflows/{workflow['id']}").json()["data"]["status"] == "paused"
    page.get_by_role("button", name="Activate").click()
    page.get_by_role("button", name="Lock").click()
    expect(page.get_by_role("button", name="Unlock")).to_be_visible()
    # Locked: a restore answers 403, shown as the API words it.
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_text("Workflow is locked")).to_be_visible()
    page.get_by_role("button", name="Unlock").click()
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.locator("#wf-meta")).to_contain_text("version 3 ")
    assert (
        client.get(f"/v1/workflows/{workflow['id']}").json()["data"]["crew"][0]["systemPrompt"]
        == "p"
    )

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    assert client.get(f"/v1/workflows/{workflow['id']}").status_code == 404
