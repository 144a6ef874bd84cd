"""Telemetry fixtures: the app with its metrics port open and 127.0.0.1 allowed for tools."""

from __future__ import annotations

import pytest

from loopllama.settings import TelemetrySettings, ToolSettings
from tests.fakes.mail_and_http import http_server
from tests.helpers import free_port

__all__ = ["http_server", "settings"]


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "tools": ToolSettings(http_tool_allow="127.0.0.1", timeout=5.0),
            "telemetry": TelemetrySettings(metrics_port=free_port()),
        }
    )
