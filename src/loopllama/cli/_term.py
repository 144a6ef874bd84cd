"""Terminal niceties for the remote commands: a spinner, and whether to show one.

Progress goes to stderr so that stdout carries only results (`loopllama run ... > out.md`).
The spinner is drawn only when both stdout and stderr are terminals: never in pipes, files,
CI logs or `--json` mode.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_FRAMES = "|/-\\"


def interactive_output() -> bool:
    """True when a person is watching: stdout and stderr are terminals."""
    return _isatty(sys.stdout) and _isatty(sys.stderr)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Spinner:
    """One status line redrawn in place on stderr; does nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._stream = sys.stderr
        encoding = (getattr(self._stream, "encoding", "") or "").lower()
        self._frames = FRAMES if "utf" in encoding else ASCII_FRAMES
        self._frame = 0
        self._shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        frame = self._frames[self._frame % len(self._frames)]
        self._frame += 1
        self._stream.write(f"\r{frame} {text}\x1b[K")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False

    def wait(self, seconds: float, text: Callable[[], str]) -> None:
        """Sleep `seconds`, animating the line `text()` meanwhile when enabled."""
        if not self.enabled:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.show(text())
            time.sleep(min(0.1, left))
