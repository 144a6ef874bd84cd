"""`LoopLlama` and `AsyncLoopLlama`: configuration, the HTTP client, and the two plan drivers.

Both clients run the same plans from `_core.py`; they differ only in how they send a request,
sleep and call a pause handler (about twenty lines each, below).
"""

from __future__ import annotations

import abc
import asyncio
import copy
import dataclasses
import inspect
import os
import time
from collections.abc import Mapping
from typing import Any, Self, TypeVar

import httpx

from loopllama.client._core import AskHandler, Config, Op, Plan, Send, Sleep, request
from loopllama.client._exceptions import LoopLlamaError
from loopllama.client._version import __version__
from loopllama.client.resources.keys import AsyncKeys, Keys
from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.usage import AsyncUsage, Usage
from loopllama.client.resources.webhooks import AsyncWebhooks, Webhooks
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows
from loopllama.client.types import NOT_GIVEN, NotGiven

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2


def _timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    return value if isinstance(value, httpx.Timeout) else httpx.Timeout(value)


class _BaseClient(abc.ABC):
    _config: Config
    _owns_http: bool

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout | NotGiven | None,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
    ) -> None:
        api_key = api_key or os.environ.get("LOOPLLAMA_API_KEY")
        if not api_key:
            raise LoopLlamaError(
                "No API key: pass api_key=... or set the LOOPLLAMA_API_KEY environment variable"
                " (a server admin creates one with `loopllama keys create --account NAME`)."
            )
        base_url = base_url or os.environ.get("LOOPLLAMA_BASE_URL") or DEFAULT_BASE_URL
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise LoopLlamaError(f"Invalid base_url {base_url!r}: expected http(s)://host[:port]")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._config = Config(
            api_key=api_key,
            base_url=base_url.rstrip("/"),
            timeout=DEFAULT_TIMEOUT if isinstance(timeout, NotGiven) else _timeout(timeout),
            max_retries=max_retries,
            headers={"User-Agent": f"loopllama-python/{__version__}", **(default_headers or {})},
        )

    @property
    def api_key(self) -> str:
        """The API key requests are sent with."""
        return self._config.api_key

    @property
    def base_url(self) -> str:
        """The server's address, e.g. http://127.0.0.1:8080."""
        return self._config.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeout of each HTTP request."""
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        """How many times a transient failure is retried."""
        return self._config.max_retries

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
    ) -> Self:
        """A copy of this client with other defaults, sharing its connection pool.

        `client.with_options(max_retries=5).runs.retrieve(run_id)`
        """
        clone = copy.copy(self)
        changes: dict[str, Any] = {}
        if not isinstance(timeout, NotGiven):
            changes["timeout"] = _timeout(timeout)
        if not isinstance(max_retries, NotGiven):
            changes["max_retries"] = max_retries
        clone._config = dataclasses.replace(self._config, **changes)
        clone._owns_http = False  # closing the copy leaves the shared pool to the original
        clone._bind_resources()
        return clone

    @abc.abstractmethod
    def _bind_resources(self) -> None:
        """Attach `workflows`, `runs`, `keys`, `webhooks` and `usage` (sync or async flavours)
        to this client."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class LoopLlama(_BaseClient):
    """The synchronous LoopLlama client.

        from loopllama import LoopLlama

        client = LoopLlama()  # reads LOOPLLAMA_API_KEY and LOOPLLAMA_BASE_URL
        workflow = client.workflows.create(name="Brief writer")
        run = client.runs.create_and_poll(workflow.id, "Draft a brief on feature flags")
        print(run.output)

    Args:
        api_key: an `ll_live_...` key; defaults to `LOOPLLAMA_API_KEY`.
        base_url: the server; defaults to `LOOPLLAMA_BASE_URL`, then http://127.0.0.1:8080.
        timeout: seconds per HTTP request (float or `httpx.Timeout`; None waits forever);
            default 30 s, 5 s to connect.
        max_retries: extra attempts after a transient failure (default 2); see README.
        transport: an `httpx.BaseTransport` to send requests through (tests, proxies).
        http_client: a ready `httpx.Client` to use instead (not closed by `close()`).
        default_headers: headers added to every request.
    """

    workflows: Workflows
    runs: Runs
    keys: Keys
    webhooks: Webhooks
    usage: Usage

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        if http_client is not None and transport is not None:
            raise ValueError("Pass either transport or http_client, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self.timeout)
        self._bind_resources()

    def _bind_resources(self) -> None:
        self.workflows = Workflows(self)
        self.runs = Runs(self)
        self.keys = Keys(self)
        self.webhooks = Webhooks(self)
        self.usage = Usage(self)

    def _request(self, op: Op[T]) -> T:
        return self._drive(request(self._config, op))

    def _drive(self, plan: Plan[T]) -> T:
        value: Any = None
        try:
            while True:
                action = plan.send(value)
                if isinstance(action, Send):
                    try:
                        value = self._http.send(
                            self._http.build_request(
                                action.method,
                                action.url,
                                headers=dict(action.headers),
                                json=action.json,
                                timeout=action.timeout,
                            )
                        )
                    except httpx.HTTPError as exc:
                        value = exc
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    value = None
                elif isinstance(action, AskHandler):
                    value = action.handler(action.run)
        except StopIteration as stop:
            return stop.value
        finally:
            plan.close()

    def close(self) -> None:
        """Close the connection pool (unless it came from `http_client=`)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        """`with LoopLlama() as client:` closes the pool at the end."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncLoopLlama(_BaseClient):
    """The asyncio LoopLlama client: the same methods as `LoopLlama`, awaited.

        async with AsyncLoopLlama() as client:
            run = await client.runs.create_and_poll(workflow_id, "Draft a brief")

    Takes the same arguments as `LoopLlama`, with `transport: httpx.AsyncBaseTransport` (e.g.
    `httpx.ASGITransport(app=app)` to talk to an app in process) and
    `http_client: httpx.AsyncClient`.
    """

    workflows: AsyncWorkflows
    runs: AsyncRuns
    keys: AsyncKeys
    webhooks: AsyncWebhooks
    usage: AsyncUsage

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        if http_client is not None and transport is not None:
            raise ValueError("Pass either transport or http_client, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self.timeout)
        self._bind_resources()

    def _bind_resources(self) -> None:
        self.workflows = AsyncWorkflows(self)
        self.runs = AsyncRuns(self)
        self.keys = AsyncKeys(self)
        self.webhooks = AsyncWebhooks(self)
        self.usage = AsyncUsage(self)

    async def _request(self, op: Op[T]) -> T:
        return await self._drive(request(self._config, op))

    async def _drive(self, plan: Plan[T]) -> T:
        value: Any = None
        try:
            while True:
                action = plan.send(value)
                if isinstance(action, Send):
                    try:
                        value = await self._http.send(
                            self._http.build_request(
                                action.method,
                                action.url,
                                headers=dict(action.headers),
                                json=action.json,
                                timeout=action.timeout,
                            )
                        )
                    except httpx.HTTPError as exc:
                        value = exc
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                    value = None
                elif isinstance(action, AskHandler):
                    value = action.handler(action.run)
                    if inspect.isawaitable(value):
                        value = await value
        except StopIteration as stop:
            return stop.value
        finally:
            plan.close()

    async def close(self) -> None:
        """Close the connection pool (unless it came from `http_client=`)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        """`async with AsyncLoopLlama() as client:` closes the pool at the end."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
