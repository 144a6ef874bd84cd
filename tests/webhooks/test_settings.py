"""The retry schedule and timeout come from the environment; a malformed schedule stops the
server at start rather than surprising anyone hours later."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loopllama.settings import Settings


def test_the_default_schedule_is_standard_webhooks():
    webhooks = Settings().webhooks
    assert webhooks.delays == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert webhooks.timeout == 10


def test_the_environment_overrides_it(monkeypatch):
    monkeypatch.setenv("LOOPLLAMA_WEBHOOK_RETRY_SCHEDULE", "0.5, 2,10")
    monkeypatch.setenv("LOOPLLAMA_WEBHOOK_TIMEOUT", "3")
    webhooks = Settings().webhooks
    assert webhooks.delays == (0.5, 2, 10) and webhooks.timeout == 3


@pytest.mark.parametrize("schedule", ["5,soon", "-1", "nan"])
def test_a_malformed_schedule_is_refused(monkeypatch, schedule):
    monkeypatch.setenv("LOOPLLAMA_WEBHOOK_RETRY_SCHEDULE", schedule)
    with pytest.raises(ValidationError, match="LOOPLLAMA_WEBHOOK_RETRY_SCHEDULE"):
        Settings()
