"""Transports for SDK and CLI tests, all in front of the real app.

- `FlakyTransport` injects faults before (or after) the real app handles a request: a refused
  connection, a synthetic 429/5xx, or an answer lost after the server did the work. Requests
  without a fault go to the app untouched, so retries are tested against real behaviour.
- `BlockingTransport` lets the *sync* client (and so the CLI) talk to the app, whose lifespan
  runs on the test's event loop: each request is handed to that loop and awaited from the
  worker thread the sync code runs in (`asyncio.to_thread`); the body streams back the same way.
- `StreamingASGITransport`: the app in process like `httpx.ASGITransport`, but a response is
  handed over when it starts and its body streams (httpx's buffers whole responses, so a run's
  event stream would only arrive once the run ended).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

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

        async def send() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            return await self.inner.handle_async_request(forwarded)

        response = asyncio.run_coroutine_threadsafe(send(), self.loop).result(timeout=60)
        return httpx.Response(
            response.status_code,
            headers=response.headers.multi_items(),
            stream=_BlockingStream(response, self.loop),
            request=request,
        )


class _BlockingStream(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response, loop: asyncio.AbstractEventLoop) -> None:
        self.response = response
        self.loop = loop

    def __iter__(self) -> Iterator[bytes]:
        chunks = self.response.aiter_raw()

        async def next_chunk() -> bytes | None:
            try:
                return await chunks.__anext__()
            except StopAsyncIteration:
                return None

        while (chunk := self._wait(next_chunk())) is not None:
            yield chunk

    def close(self) -> None:
        self._wait(self.response.aclose())

    def _wait(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """The app in process; responses stream (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": unquote(request.url.path),
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body", False):
                    await chunks.put(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
            finally:
                await chunks.put(None)

        task = asyncio.create_task(run())
        message = await started
        return httpx.Response(
            message["status"],
            headers=message.get("headers", []),
            stream=_QueueStream(chunks, task, gone),
        )


class _QueueStream(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue, task: asyncio.Task, gone: asyncio.Event) -> None:
        self.chunks = chunks
        self.task = task
        self.gone = gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self.gone.set()  # the client hung up: the app sees http.disconnect
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
