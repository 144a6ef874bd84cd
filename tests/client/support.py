"""Transports for SDK and CLI tests, all in front of the real app.

- `FlakyTransport` injects faults before (or after) the real app handles a request: a refused
  connection, a synthetic 429/5xx, or an answer lost after the server did the work. Requests
  without a fault go to the app untouched, so retries are tested against real behaviour.
- `BlockingTransport` lets the *sync* client (and so the CLI) talk to the app, whose lifespan
  runs on the test's event loop: each request is handed to that loop and awaited from the
  worker thread the sync code runs in (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE_URL = "http://testserver"


@dataclass
class Fault:
    """What to do with the next request matching `method` and a path ending in `path`."""

    method: str
    path: str
    exc: type[httpx.HTTPError] | None = None  # raise this ...
    status: int | None = None  # ... or answer this status
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    forward: bool = False  # let the app handle the request first (its answer is then lost)

    def matches(self, request: httpx.Request) -> bool:
        return request.method == self.method and request.url.path.endswith(self.path)


def refused(method: str, path: str = "") -> Fault:
    """The connection is refused: the request never left the client."""
    return Fault(method, path, exc=httpx.ConnectError)


def answer_lost(method: str, path: str = "") -> Fault:
    """The server does the work, then the answer never arrives (a read timeout)."""
    return Fault(method, path, exc=httpx.ReadTimeout, forward=True)


def dropped(method: str, path: str = "") -> Fault:
    """The server does the work, then the connection drops."""
    return Fault(method, path, exc=httpx.RemoteProtocolError, forward=True)


def status(
    code: int, method: str, path: str = "", *, headers: dict[str, str] | None = None
) -> Fault:
    """An error answer (as a proxy or a rate limiter gives) before the app sees the request."""
    messages = {429: "Too many requests", 500: "Internal server error", 502: "Bad gateway"}
    body = {"error": messages.get(code, "Service unavailable")}
    return Fault(method, path, status=code, body=body, headers=headers or {})


class FlakyTransport(httpx.AsyncBaseTransport):
    """The app behind a list of one-shot faults; `seen` records every attempt."""

    def __init__(self, app: Any, *faults: Fault) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.faults = list(faults)
        self.seen: list[tuple[str, str]] = []
        self.requests: list[httpx.Request] = []

    def add(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def attempts(self, method: str, path: str = "") -> int:
        return sum(1 for m, p in self.seen if m == method and p.endswith(path))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        self.requests.append(request)
        fault = next((f for f in self.faults if f.matches(request)), None)
        if fault is None:
            return await self.inner.handle_async_request(request)
        self.faults.remove(fault)
        if fault.forward:
            response = await self.inner.handle_async_request(request)
            await response.aread()
        if fault.exc is not None:
            raise fault.exc("simulated fault", request=request)
        assert fault.status is not None
        return httpx.Response(fault.status, json=fault.body, headers=fault.headers)


class BlockingTransport(httpx.BaseTransport):
    """A sync transport over an async one that lives on `loop` (the test's event loop)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()

        async def send() -> tuple[int, list[tuple[str, str]], bytes]:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            response = await self.inner.handle_async_request(forwarded)
            body = await response.aread()
            await response.aclose()
            return response.status_code, response.headers.multi_items(), body

        future = asyncio.run_coroutine_threadsafe(send(), self.loop)
        code, headers, body = future.result(timeout=60)
        return httpx.Response(code, headers=headers, content=body, request=request)
