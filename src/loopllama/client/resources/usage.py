"""`client.usage`: tokens and dollars per UTC day, workflow and model."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from loopllama.client import _core
from loopllama.client.types import UsageRow

if TYPE_CHECKING:
    from loopllama.client._client import AsyncLoopLlama, LoopLlama

DateParam = date | str


class Usage:
    """What the account's runs used (GET /v1/usage)."""

    def __init__(self, client: LoopLlama) -> None:
        self._client = client

    def retrieve(
        self, *, start: DateParam | None = None, end: DateParam | None = None
    ) -> list[UsageRow]:
        """Rows per UTC day, workflow and model, oldest day first: runs, tokens in and out,
        cost in dollars (None when the model's price is unknown). `start` and `end` are UTC
        days (`date` or "YYYY-MM-DD"), both included, at most 92 days apart; by default the
        last 30 days. A run counts on the day it was triggered."""
        return self._client._request(_core.retrieve_usage(start, end))


class AsyncUsage:
    """What the account's runs used (GET /v1/usage)."""

    def __init__(self, client: AsyncLoopLlama) -> None:
        self._client = client

    async def retrieve(
        self, *, start: DateParam | None = None, end: DateParam | None = None
    ) -> list[UsageRow]:
        """Rows per UTC day, workflow and model; see `Usage.retrieve`."""
        return await self._client._request(_core.retrieve_usage(start, end))
