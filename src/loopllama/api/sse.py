"""`EventStreamResponse`: a `text/event-stream` response that costs one extra task per stream.

Frames are encoded by sse-starlette's `ServerSentEvent` (the routes do it). Starlette's
`StreamingResponse` would run an anyio task group with two tasks per response on servers that
speak ASGI spec 2.3 (uvicorn does), and sse-starlette's `EventSourceResponse` four; with a
thousand idle streams that is most of their memory. Here the stream is sent from the request's
own task, and one small task waits for the client to go away (uvicorn's `send` returns quietly
after a disconnect, so without it a stream of a paused run would live on unseen): it cancels the
sending task, which closes the frames' generator and with it the stream's subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        status_code: int = 200,  # FastAPI reads the default for the OpenAPI document
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.frames = frames
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.current_task()
        assert sender is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            sender.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise
            sender.uncancel()  # our own doing: the client left, which ends the response
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.frames.aclose()  # type: ignore[attr-defined]
