"""Helpers shared by the tool tests: settings, a tool context, a free port."""

from __future__ import annotations

import socket
from typing import Any

from loopllama.engine.tools import ToolContext
from loopllama.settings import ToolSettings

SMTP_USER = "mailer"
SMTP_PASSWORD = "p@ss word"  # needs percent-encoding in the URL


def tool_settings(**overrides: Any) -> ToolSettings:
    values: dict[str, Any] = {
        "smtp_url": None,
        "smtp_from": "LoopLlama <bot@loopllama.test>",
        "http_tool_allow": "",
        "timeout": 5.0,
    }
    values.update(overrides)
    return ToolSettings(**values)


def context(key: str = "run1:step0:call0", **overrides: Any) -> ToolContext:
    return ToolContext(idempotency_key=key, settings=tool_settings(**overrides))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
