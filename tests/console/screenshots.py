"""`scripts/screenshots`: the run page mid-stream and a paused run, as the README shows them.

A real `loopllama serve` with the fake provider (its text streamed word by word, slowly) and
Debian's chromium through Playwright; each picture in light and dark and at 1280x800 and a
phone's 390x844. Fails, like the browser tests, on any console error or foreign request.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.console.support import CHROMIUM, Guard, Receiver, api, sign_in
from tests.fakes.provider_server import FakeProviderServer, Reply, tool_call
from tests.helpers import LiveServer

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BRIEF = (
    "Feature flags let a team merge unfinished work behind a switch, so that main stays "
    "releasable every day. A risky change reaches one percent of users first, then ten, then "
    "everyone, and a bad night ends with a toggle instead of a rollback. Product managers run "
    "experiments without a deploy; support turns a feature on for one customer. The cost is "
    "discipline: every flag gets an owner and a removal date."
)
WORDS = [word + " " for word in BRIEF.split(" ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    receiver = Receiver()
    with FakeProviderServer() as fake, tempfile.TemporaryDirectory() as workdir:
        live = LiveServer(Path(workdir), fake, LOOPLLAMA_HTTP_TOOL_ALLOW="127.0.0.1")
        live.start()
        try:
            shots(live, fake, receiver, out)
        finally:
            live.stop()
            receiver.stop()


def shots(live: LiveServer, fake: FakeProviderServer, receiver: Receiver, out: Path) -> None:
    client = api(live.url, live.api_key)
    crew = [
        {"role": "researcher", "systemPrompt": "List the facts."},
        {"role": "writer", "systemPrompt": "Write the brief.", "tools": ["crm_upsert"]},
    ]
    tool = {
        "name": "crm_upsert",
        "description": "Create or update a CRM contact",
        "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
        "url": f"{receiver.url}/crm",
    }
    workflow = client.post(
        "/v1/workflows",
        json={
            "name": "Feature-flag brief",
            "description": "Research, then write",
            "model": "claude-test",
            "crew": crew,
            "tools": [tool],
            "human_in_the_loop": {"approve_tools": ["crm_upsert"]},
        },
    ).json()["data"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for name, viewport, scheme in [
            ("run-streaming", DESKTOP, "light"),
            ("run-streaming-dark", DESKTOP, "dark"),
            ("run-streaming-phone", PHONE, "light"),
        ]:
            with page_for(browser, live, viewport, scheme) as page:
                streaming(page, live, fake, workflow)
                page.screenshot(path=out / f"{name}.png", full_page=viewport is PHONE)
                print(out / f"{name}.png")
        for name, viewport, scheme in [
            ("run-paused", DESKTOP, "light"),
            ("run-paused-phone-dark", PHONE, "dark"),
        ]:
            with page_for(browser, live, viewport, scheme) as page:
                paused(page, live, fake, workflow)
                page.screenshot(path=out / f"{name}.png", full_page=viewport is PHONE)
                print(out / f"{name}.png")
        browser.close()


class page_for:
    def __init__(self, browser, live, viewport, scheme) -> None:
        self.context = browser.new_context(
            viewport=viewport, color_scheme=scheme, device_scale_factor=1
        )
        self.guard = Guard(origin=live.url)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.guard.watch(self.context, self.page)
        sign_in(self.page, live.url, live.api_key)

    def __enter__(self):
        return self.page

    def __exit__(self, *exc) -> None:
        self.context.close()
        if exc[0] is None and self.guard.problems():
            raise SystemExit(f"console problems: {self.guard.problems()}")


def streaming(page, live, fake, workflow) -> None:
    watching = threading.Event()
    fake.enqueue(
        lambda request: (watching.wait(30), Reply("Five facts, with sources."))[1],
        Reply(BRIEF, chunks=tuple(WORDS), chunk_delay=0.15),
    )
    run = api(live.url, live.api_key).post(
        f"/v1/workflows/{workflow['id']}/runs", {"input": "A brief on feature flags"}
    )
    page.goto(f"{live.url}/console#/runs/{run.json()['data']['id']}")
    expect(page.locator(".live")).to_have_text("● live")
    watching.set()
    expect(page.locator("#step-1 .step-output")).to_contain_text("one percent")
    page.evaluate("document.activeElement.blur()")


def paused(page, live, fake, workflow) -> None:
    fake.enqueue(
        "Five facts, with sources.",
        tool_call("crm_upsert", {"email": "ada@example.com", "note": "wants the brief"}),
    )
    run = api(live.url, live.api_key).post(
        f"/v1/workflows/{workflow['id']}/runs", {"input": "Brief Ada on feature flags"}
    )
    page.goto(f"{live.url}/console#/runs/{run.json()['data']['id']}")
    expect(page.get_by_role("heading", name="Approval needed")).to_be_visible()
    page.evaluate("document.activeElement.blur()")


if __name__ == "__main__":
    main()
