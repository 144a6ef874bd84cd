"""In a real browser: a run watched live (text growing before the run completes), a question
answered, an action approved and one rejected, a run cancelled, retried and forked, untrusted
output shown as text, and a lost connection that shows a banner and recovers by itself."""

from __future__ import annotations

import re
import threading
import time

from playwright.sync_api import expect

from tests.console.support import api, sign_in
from tests.fakes.provider_server import Reply, hang, tool_call

WORDS = [f"word{n} " for n in range(12)]


def workflow(live, **extra):
    body = {
        "name": "Watched",
        "model": "claude-test",
        "crew": [
            {"role": "writer", "systemPrompt": "Write.", "tools": extra.pop("agent_tools", [])}
        ],
        **extra,
    }
    response = api(live.url, live.api_key).post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def trigger(live, workflow_id, text="Go"):
    response = api(live.url, live.api_key).post(
        f"/v1/workflows/{workflow_id}/runs", {"input": text}
    )
    assert response.status_code == 202, response.text
    return response.json()["data"]


def settle(live, run_id, status):
    deadline = time.monotonic() + 30
    while (run := api(live.url, live.api_key).get(f"/v1/runs/{run_id}").json()["data"])[
        "status"
    ] != status:
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


def test_streamed_text_grows_before_the_run_completes(page, live, fake):
    # The engine streams a model call when someone watches the run as the call starts: the
    # first agent's answer waits until the page is watching, the second agent's text streams.
    watching = threading.Event()
    fake.enqueue(
        lambda request: (watching.wait(30), Reply("Plan ready."))[1],
        Reply("".join(WORDS), chunks=tuple(WORDS), chunk_delay=0.25),
    )
    crew = [
        {"role": "planner", "systemPrompt": "Plan."},
        {"role": "writer", "systemPrompt": "Write."},
    ]
    flow = workflow(live, crew=crew)
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/workflows/{flow['id']}")
    page.get_by_label("Input").fill("Write something")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#step-0")).to_contain_text("planner")
    expect(page.locator(".live")).to_have_text("● live")
    watching.set()
    output = page.locator("#step-1 .step-output")
    status = page.locator(".summary dd").first
    # Some of the text, while the run is still running...
    expect(output).to_contain_text("word1 ")
    partial = output.text_content()
    assert partial != "".join(WORDS)
    expect(status).to_have_text("running")
    # ...then more of it, then all of it with the run completed.
    expect(output).not_to_have_text(partial)
    expect(status).to_have_text("completed")
    expect(output).to_have_text("".join(WORDS))
    expect(page.locator("#run-output")).to_have_text("".join(WORDS))
    expect(page.locator(".timeline li strong")).to_have_text(
        ["run.queued", "run.started"] + ["step.started", "step.completed"] * 2 + ["run.completed"]
    )
    expect(page.locator(".live")).to_have_text("ended")


def test_a_question_is_answered_from_the_page(page, live, fake):
    fake.enqueue(tool_call("ask_human", {"question": "Which tone?"}), "Written in a warm tone.")
    flow = workflow(live, human_in_the_loop={"ask_questions": True})
    run = trigger(live, flow["id"])
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/runs/{run['id']}")
    expect(page.get_by_role("heading", name="The run asks")).to_be_visible()
    expect(page.locator(".question")).to_have_text("Which tone?")
    page.get_by_label("Your answer").fill("Warm, please")
    page.get_by_role("button", name="Send answer").click()
    expect(page.locator(".summary dd").first).to_have_text("completed")
    expect(page.locator("#run-output")).to_have_text("Written in a warm tone.")
    assert "Warm, please" in str(fake.requests[-1].messages)
    expect(page.locator(".timeline")).to_contain_text("run.resumed")


def test_an_action_is_approved_and_another_rejected_with_a_reason(page, live, fake, receiver):
    tool = {
        "name": "crm_upsert",
        "description": "Create or update a CRM contact",
        "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
        "url": f"{receiver.url}/crm",
    }
    flow = workflow(
        live,
        tools=[tool],
        agent_tools=["crm_upsert"],
        human_in_the_loop={"approve_tools": ["crm_upsert"]},
    )
    sign_in(page, live.url, live.api_key)

    fake.enqueue(tool_call("crm_upsert", {"email": "ada@example.com"}), "Saved Ada.")
    approved = trigger(live, flow["id"])
    page.goto(f"{live.url}/console#/runs/{approved['id']}")
    expect(page.get_by_role("heading", name="Approval needed")).to_be_visible()
    expect(page.locator(".pending pre")).to_contain_text('"email": "ada@example.com"')
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".summary dd").first).to_have_text("completed")
    (call,) = receiver.wait_for("/crm")
    assert call["body"] == {"email": "ada@example.com"}
    expect(page.locator(".tool-call")).to_contain_text("crm_upsert")

    fake.enqueue(tool_call("crm_upsert", {"email": "bob@example.com"}), "Skipped Bob.")
    rejected = trigger(live, flow["id"])
    page.goto(f"{live.url}/console#/runs/{rejected['id']}")
    page.get_by_label("Reason (optional)").fill("Bob opted out")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator(".summary dd").first).to_have_text("completed")
    assert "Bob opted out" in str(fake.requests[-1].messages)
    assert len(receiver.received) == 1  # the rejected call never ran


def test_cancel_then_retry_and_fork_from_the_page(page, live, fake):
    fake.enqueue(hang(30))
    flow = workflow(live)
    run = trigger(live, flow["id"])
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/runs/{run['id']}")
    expect(page.locator(".summary dd").first).to_have_text("running")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator(".summary dd").first).to_have_text("cancelled")
    assert (
        api(live.url, live.api_key).get(f"/v1/runs/{run['id']}").json()["data"]["status"]
        == "cancelled"
    )

    page.get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(re.compile(run["id"]))
    expect(page.locator(".summary dd").first).to_have_text("completed")
    retried = page.url.rsplit("/", 1)[-1]

    page.get_by_text("Fork…").click()
    page.get_by_label("New input (optional)").fill("Another go")
    page.get_by_role("button", name="Fork run").click()
    expect(page).not_to_have_url(re.compile(retried))
    expect(page.locator(".summary dd").first).to_have_text("completed")
    expect(page.locator(".summary")).to_contain_text(f"{retried} at step 0")


def test_agent_output_is_shown_as_text_never_as_markup(page, live, fake):
    hostile = (
        '<script>window.pwned = 1</script><img src="/x" onerror="window.pwned = 2">'
        " [click](javascript:alert(1))"
    )
    fake.enqueue(hostile)
    flow = workflow(live)
    run = trigger(live, flow["id"])
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/runs/{run['id']}")
    expect(page.locator("#run-output")).to_have_text(hostile)
    assert page.locator("main img, main script, main a[href^='javascript']").count() == 0
    assert page.evaluate("window.pwned") is None


def test_runs_list_filters_by_status(page, live, fake):
    flow = workflow(live)
    done = trigger(live, flow["id"], "first")
    settle(live, done["id"], "completed")
    fake.enqueue(hang(30))
    stuck = trigger(live, flow["id"], "second")
    settle(live, stuck["id"], "running")
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/runs?status=running")
    expect(page.get_by_role("link", name=stuck["id"])).to_be_visible()
    expect(page.get_by_role("link", name=done["id"])).to_have_count(0)
    page.get_by_label("Status").select_option("completed")
    expect(page.get_by_role("link", name=done["id"])).to_be_visible()
    expect(page.get_by_role("link", name=stuck["id"])).to_have_count(0)
    api(live.url, live.api_key).post(f"/v1/runs/{stuck['id']}/cancel")


def test_a_lost_connection_shows_a_banner_and_the_run_page_recovers(page, live, fake, guard):
    # The browser logs the refused connections while the server is down.
    guard.allowed += (
        "Failed to load resource: net::ERR_CONNECTION_REFUSED",
        "Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING",
    )
    fake.enqueue(tool_call("ask_human", {"question": "Still there?"}), "Yes.")
    flow = workflow(live, human_in_the_loop={"ask_questions": True})
    run = trigger(live, flow["id"])
    sign_in(page, live.url, live.api_key)
    page.goto(f"{live.url}/console#/runs/{run['id']}")
    expect(page.locator(".question")).to_have_text("Still there?")
    live.kill()
    banner = page.get_by_role("status").filter(has_text="Connection")
    expect(banner).to_have_text(re.compile("lost"))
    expect(page.locator(".live")).to_have_text("reconnecting…")
    live.start()
    expect(page.locator(".live")).to_have_text("● live", timeout=30_000)
    expect(page.locator("#banner")).to_be_hidden(timeout=10_000)
    page.get_by_label("Your answer").fill("Yes")
    page.get_by_role("button", name="Send answer").click()
    # The restarted server imports its provider SDK again on this first call: a longer wait.
    expect(page.locator(".summary dd").first).to_have_text("completed", timeout=45_000)
    # Resumed after the last event seen: every durable event shown exactly once.
    ids = page.locator(".timeline li .mono").all_text_contents()
    assert ids == [f"#{n}" for n in range(1, len(ids) + 1)]
