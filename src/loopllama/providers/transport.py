"""The HTTP client handed to the Anthropic and OpenAI SDKs: their httpx pool or aiohttp.

At hundreds of model calls in flight httpx's pool costs more CPU and memory per request than
aiohttp; both SDKs ship an aiohttp-based client (`DefaultAioHttpClient`). The pool is sized by
`LOOPLLAMA_PROVIDER_MAX_CONNECTIONS` either way.
"""

from __future__ import annotations

from typing import Any

import httpx2

from loopllama.settings import ModelSettings, ProviderSettings


def sdk_http_client(sdk: Any, providers: ProviderSettings, models: ModelSettings) -> Any:
    """A client for `sdk` (the `anthropic` or `openai` module); the caller closes it."""
    limits = httpx2.Limits(
        max_connections=providers.max_connections,
        max_keepalive_connections=providers.max_connections,
    )
    factory = (
        sdk.DefaultAioHttpClient
        if providers.http_transport == "aiohttp"
        else sdk.DefaultAsyncHttpxClient
    )
    return factory(limits=limits, timeout=models.timeout)
