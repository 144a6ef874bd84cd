"""`loopllama run` in a real pseudo-terminal against a real `loopllama serve`: the spinner
shows while a step works, the pause is asked at the prompt, the answer resumes the run."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from loopllama import LoopLlama
from tests.fakes.provider_server import Reply, tool_call


class Terminal:
    """The controlling side of a pty: everything the command wrote, read as it comes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""

    def read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            return False
        self.text += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def expect(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert time.monotonic() < deadline, f"no {needle!r} in {self.text!r}"
            assert self.read(0.1), f"closed before {needle!r}: {self.text!r}"

    def drain(self, process: subprocess.Popen, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.read(0.1) and process.poll() is None:
            assert time.monotonic() < deadline, self.text
        while self.read(0.1):
            pass
        return process.wait(timeout=10)


def test_run_prompts_in_a_terminal_and_shows_a_spinner(live_server, provider_server):
    with LoopLlama(api_key=live_server.api_key, base_url=live_server.url) as sdk:
        workflow = sdk.workflows.create(
            name="Asker",
            crew=[{"role": "writer", "systemPrompt": "Ask, then write."}],
            human_in_the_loop={"ask_questions": True},
        )
    provider_server.enqueue(
        tool_call("ask_human", {"question": "Which tone?"}), Reply("Warm draft.", delay=1.0)
    )
    env = {
        **os.environ,
        "LOOPLLAMA_API_KEY": live_server.api_key,
        "LOOPLLAMA_BASE_URL": live_server.url,
    }
    controller, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "loopllama.cli", "run", workflow.id, "Draft.", "--interval", "0.2"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    terminal = Terminal(controller)
    try:
        terminal.expect("? writer asks: Which tone?")
        terminal.expect("Your answer: ")
        os.write(controller, b"Warm.\n")
        code = terminal.drain(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert code == 0, terminal.text
    assert "▸ writer (claude-sonnet-4-6) started" in terminal.text
    assert "writer (claude-sonnet-4-6) working" in terminal.text  # the spinner's line
    assert "\x1b[K" in terminal.text  # redrawn in place
    assert "✓ writer (claude-sonnet-4-6) finished in" in terminal.text
    assert terminal.text.rstrip().endswith("Warm draft.")
    answer = provider_server.requests[-1].messages[-1]["content"][0]
    assert "Warm." in str(answer["content"])
