"""`EventStreamResponse`: a `text/event-stream` response that costs one extra task per stream.

Frames are encoded by sse-starlette's `ServerSentEvent` (the routes do it). Starlette's
`StreamingResponse` would run an anyio task group with two tasks per response on servers that
speak ASGI spec 2.3 (uvicorn does), and sse-starlette's `EventSourceResponse` four; with a
thousand idle streams that is most of their memory. Here the stream is sent from the request's
own task, and one pending `receive()` waits for the client to go away (uvicorn's `send` returns
quietly after a disconnect, so without it a stream of a paused run would live on unseen): it
cancels the sending task, which closes the frames' generator and with it the stream's
subscription. An idle stream keeps nothing it has sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        status_code: int = 200,  # FastAPI reads the default for the OpenAPI document
    ) -> None:
        self.frames = frames
        self.status_code = status_code
        self.background = None
        # The same for every stream: its own list (FastAPI may extend it), shared items.
        self.raw_headers = list(_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.current_task()
        assert sender is not None
        watch = _DisconnectWatch(receive, sender)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self.frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                del chunk  # not kept while the stream waits for the next one
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watch.gone:
                raise
            sender.uncancel()  # our own doing: the client left, which ends the response
        finally:
            await watch.stop()
            await self.frames.aclose()  # type: ignore[attr-defined]


# Never cached, and not buffered by a proxy (nginx reads X-Accel-Buffering).
_HEADERS = (
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
)


class _DisconnectWatch:
    """Cancels `sender` when the client disconnects: one `receive()` at a time, run as a task
    whose callback reads what it got (no coroutine of ours waits beside it)."""

    __slots__ = ("_pending", "_receive", "_sender", "gone")

    def __init__(self, receive: Receive, sender: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._sender: asyncio.Task[Any] | None = sender  # None once stopped
        self.gone = False
        self._listen()

    def _listen(self) -> None:
        self._pending = asyncio.ensure_future(self._receive())
        self._pending.add_done_callback(self._heard)

    def _heard(self, pending: asyncio.Future[Any]) -> None:
        if self._sender is None or pending.cancelled() or pending.exception() is not None:
            return  # the response is over, or receive() failed (stop() raises that)
        if pending.result()["type"] != "http.disconnect":
            self._listen()  # more of a request body: not the end
            return
        self.gone = True
        self._sender.cancel()

    async def stop(self) -> None:
        self._sender = None  # a disconnect heard from now on cancels nothing
        self._pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pending
