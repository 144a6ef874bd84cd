"""Model calls with bounded retries and exponential backoff for transient provider failures."""

from __future__ import annotations

import asyncio
import logging
import random

from loopllama.providers.base import ModelRequest, ModelResponse, Provider, ProviderError
from loopllama.settings import ModelSettings

log = logging.getLogger(__name__)

# A provider's Retry-After is honoured, up to this many seconds.
MAX_RETRY_AFTER = 60.0


def backoff_delay(retry: int, settings: ModelSettings, retry_after: float | None) -> float:
    """Delay before retry number `retry` (0-based): doubling, with jitter, capped."""
    delay = min(settings.retry_max_delay, settings.retry_base_delay * 2**retry)
    delay *= random.uniform(0.5, 1.0)  # jitter spreads retries of many runs apart
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


async def complete_with_retries(
    provider: Provider, request: ModelRequest, settings: ModelSettings
) -> ModelResponse:
    """One model call, retried on transient failures. Raises the last `ProviderError`."""
    for retry in range(settings.max_retries + 1):
        try:
            return await provider.complete(request)
        except ProviderError as error:
            if not error.transient or retry == settings.max_retries:
                raise
            delay = backoff_delay(retry, settings, error.retry_after)
            log.warning(
                "model call to %s failed (%s); retry %d/%d in %.2fs",
                provider.name,
                error.reason,
                retry + 1,
                settings.max_retries,
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop always returns or raises
