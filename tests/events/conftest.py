"""Event-test fixtures: custom tools may call a local HTTP server, and the app can be served by
a real uvicorn on loopback (for streams)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from loopllama.settings import ToolSettings
from tests.events.support import serve
from tests.fakes.mail_and_http import http_server

__all__ = ["http_server", "live", "settings"]


@pytest.fixture
def settings(settings):
    """The default test settings, 127.0.0.1 allowed for custom tools, fast keep-alives."""
    tools = ToolSettings(http_tool_allow="127.0.0.1", timeout=5.0)
    server = settings.server.model_copy(update={"stream_keepalive": 0.3})
    return settings.model_copy(update={"tools": tools, "server": server})


@pytest.fixture
async def live(app, api_key) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the app served over a real loopback connection."""
    async with serve(app) as url:
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as http:
            yield http
