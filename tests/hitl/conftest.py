"""Human-in-the-loop fixtures: the app with a real SMTP server and an allow-listed local HTTP
server for tools, and helpers to build workflows that pause."""

from __future__ import annotations

import pytest

from loopllama.settings import ToolSettings
from tests.fakes.mail_and_http import http_server, self_signed, smtp_server

__all__ = ["http_server", "mailbox", "self_signed", "settings", "smtp_server"]


@pytest.fixture
def mailbox(smtp_server):
    """A plain SMTP server whose received mails tests can read (`mailbox.mails`)."""
    return smtp_server()


@pytest.fixture
def settings(settings, mailbox):
    """The default test settings plus send_email through `mailbox` and 127.0.0.1 allowed for
    custom tools (the user's own endpoint in these tests)."""
    tools = ToolSettings(
        smtp_url=f"smtp+plain://127.0.0.1:{mailbox.port}",
        smtp_from="LoopLlama <bot@loopllama.test>",
        http_tool_allow="127.0.0.1",
        timeout=5.0,
    )
    return settings.model_copy(update={"tools": tools})
