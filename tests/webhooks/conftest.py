"""Webhook fixtures: 127.0.0.1 receivers allowed (as the tools tests allow their servers), a
short retry schedule and timeout, and a receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loopllama.settings import ToolSettings, WebhookSettings
from tests.webhooks.support import Receiver, receiver

SCHEDULE = "0.3,0.3,0.3"


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "tools": ToolSettings(http_tool_allow="127.0.0.1", timeout=5.0),
            "webhooks": WebhookSettings(retry_schedule=SCHEDULE, timeout=2.0),
        }
    )


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with receiver() as app:
        yield app
