"""The fake provider server's request log (`python -m tests.fakes.provider_server --log`), which
bench.e2e checks every run against."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]  # `-m tests....` resolves from here, whatever the cwd


def test_each_request_is_logged_with_its_arrival_and_prompts(tmp_path: Path) -> None:
    log, port = tmp_path / "requests.jsonl", free_port()
    command = [sys.executable, "-m", "tests.fakes.provider_server", "--port", str(port)]
    server = subprocess.Popen([*command, "--log", str(log)], stdout=subprocess.PIPE, cwd=ROOT)
    assert server.stdout is not None
    try:
        url = server.stdout.readline().decode().strip()  # printed once it listens
        before = time.time()
        response = httpx.post(
            f"{url}/v1/messages",
            json={
                "model": "claude-test",
                "max_tokens": 10,
                "system": "You plan.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            },
        )
        after = time.time()
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()

    assert response.json()["content"][0]["text"] == "echo: hi"  # unchanged by the log
    [line] = log.read_text().splitlines()
    entry = json.loads(line)
    assert before <= entry["t"] <= after
    assert entry["handled_ms"] >= 0
    assert (entry["model"], entry["system"], entry["user"]) == ("claude-test", "You plan.", "hi")
