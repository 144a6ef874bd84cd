"""One attempt against a real receiver on 127.0.0.1: redirects are not followed, a slow answer
times out, a long answer is read only in part, refused addresses are never connected to."""

from __future__ import annotations

import pytest

from loopllama.webhooks.sender import Sender

ALLOW = frozenset({"127.0.0.1"})


async def _send(sender: Sender, url: str):
    try:
        return await sender.send(url, b'{"type":"run.completed"}', {"webhook-id": "w1"})
    finally:
        await sender.aclose()


async def test_a_2xx_is_success(hook):
    hook.status = 204
    outcome = await _send(Sender(ALLOW, 5), hook.url + "/ok")
    assert (outcome.succeeded, outcome.status_code, outcome.error) == (True, 204, None)
    assert hook.received[0].body == b'{"type":"run.completed"}'


async def test_redirects_are_not_followed(hook):
    hook.status = 307
    hook.answer = b""
    hook.answer_headers = [(b"location", (hook.url + "/elsewhere").encode())]
    outcome = await _send(Sender(ALLOW, 5), hook.url + "/hook")
    assert not outcome.succeeded and outcome.status_code == 307
    assert outcome.error == "HTTP 307 (redirects are not followed)"
    assert [r.path for r in hook.received] == ["/hook"]


async def test_a_slow_endpoint_times_out(hook):
    hook.delay = 3
    outcome = await _send(Sender(ALLOW, 0.3), hook.url)
    assert not outcome.succeeded and outcome.status_code is None
    assert outcome.error == "timed out after 0.3 seconds"


async def test_only_the_first_kib_of_an_error_body_is_kept(hook):
    hook.status = 500
    hook.answer = "é".encode() * 200_000  # 400 KB: read in part, never whole
    outcome = await _send(Sender(ALLOW, 5), hook.url)
    assert outcome.error == "HTTP 500: " + "é" * 1024


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_refused_addresses_are_never_connected_to(hook, host):
    url = hook.url.replace("127.0.0.1", host)
    outcome = await _send(Sender(frozenset(), 5), url)
    assert not outcome.succeeded and outcome.status_code is None
    assert outcome.error.startswith(f"refused to connect to {host}")
    assert "loopback address" in outcome.error
    assert hook.received == []
