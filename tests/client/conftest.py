"""SDK fixtures: an `AsyncLoopLlama` on the real app in process, through a `FlakyTransport`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loopllama import AsyncLoopLlama
from loopllama.client import _retry
from tests.client.support import BASE_URL, FlakyTransport


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of about a millisecond: retry tests count attempts, they need not wait."""
    monkeypatch.setattr(_retry, "INITIAL_RETRY_DELAY", 0.001)


@pytest.fixture
def transport(app) -> FlakyTransport:
    return FlakyTransport(app)


@pytest.fixture
async def sdk(transport: FlakyTransport, api_key: str) -> AsyncIterator[AsyncLoopLlama]:
    async with AsyncLoopLlama(api_key=api_key, base_url=BASE_URL, transport=transport) as client:
        yield client
