"""Browser fixtures: one server per module, one guarded browser page per test.

Playwright for Python drives Debian's chromium (`scripts/bootstrap` installs both when missing;
`playwright install` cannot download browsers here). Without them the tests are skipped
locally, and fail in CI, where a missing browser must not pass silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.support import CHROMIUM, Guard, Receiver, api
from tests.fakes.provider_server import FakeProviderServer
from tests.helpers import LiveServer


def _require_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(
                "the browser tests need playwright and /usr/bin/chromium (scripts/bootstrap)"
            )
        pytest.skip("playwright or /usr/bin/chromium missing: run scripts/bootstrap")
    return sync_playwright


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture(scope="module")
def live(tmp_path_factory, fake, receiver) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("console"),
        fake,
        LOOPLLAMA_HTTP_TOOL_ALLOW="127.0.0.1",
        LOOPLLAMA_WEBHOOK_RETRY_SCHEDULE="0.3,0.3",
    )
    server.start()
    _warm_up(server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def guard(live) -> Guard:
    return Guard(origin=live.url)


@pytest.fixture
def page(browser, live, fake, guard) -> Iterator[Any]:
    fake.clear()
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Europe/Paris"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    guard.watch(context, page)
    yield page
    context.close()
    assert guard.problems() == []


def _warm_up(server: LiveServer) -> None:
    """One run to completion: the first model call of a process imports the provider's SDK
    (seconds on a busy machine), which would otherwise land inside the first test's waits."""
    client = api(server.url, server.api_key)
    crew = [{"role": "warm", "systemPrompt": "p"}]
    workflow = client.post(
        "/v1/workflows", json={"name": "warm-up", "model": "claude-test", "crew": crew}
    )
    run = client.post(f"/v1/workflows/{workflow.json()['data']['id']}/runs", {"input": "hi"})
    deadline = time.monotonic() + 60
    while (
        client.get(f"/v1/runs/{run.json()['data']['id']}").json()["data"]["status"] != "completed"
    ):
        assert time.monotonic() < deadline, "the warm-up run did not complete"
        time.sleep(0.05)
