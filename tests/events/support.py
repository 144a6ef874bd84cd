"""Helpers for the event tests: the app served by a real uvicorn on loopback (an SSE stream
needs a real connection: httpx's in-process ASGI transport buffers whole responses), and a
reader of the raw event stream that checks the wire format itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from tests.helpers import free_port

TERMINAL = ("run.completed", "run.failed", "run.cancelled")


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """`app` (its lifespan already running) on a uvicorn server on 127.0.0.1; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Frame:
    """One SSE frame as it came over the wire."""

    event: str | None = None
    id: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data) if self.data is not None else None


async def read_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Frames (and comment-only frames) of an open `text/event-stream` response."""
    frame = Frame()
    async for line in response.aiter_lines():
        if line == "":
            yield frame
            frame = Frame()
        elif line.startswith(":"):
            frame.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(": ")
            assert name in ("event", "id", "data"), line
            assert getattr(frame, name) is None, f"two {name} lines in one frame"
            setattr(frame, name, value)
    if frame.data is not None or frame.comments:
        yield frame


async def collect(
    http: httpx.AsyncClient, run_id: str, headers: dict[str, str] | None = None, **params: Any
) -> list[Frame]:
    """Every frame of the run's stream until the server closes it (after a terminal event)."""
    frames = []
    async with http.stream(
        "GET", f"/v1/runs/{run_id}/stream", headers=headers or {}, params=params
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for frame in read_frames(response):
            frames.append(frame)
    return frames


def durable(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f.json for f in frames if f.event != "step.delta" and f.data is not None]


def deltas(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f.json for f in frames if f.event == "step.delta"]


async def events_of(http: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def assert_gapless(events: list[dict[str, Any]]) -> None:
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of `target` (host, port) that can drop every open
    connection at once, as a load balancer restart or a flaky network does. It records the
    head of each request it forwards."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.heads: list[str] = []
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.AbstractServer | None = None
        self.url = ""

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        for client, upstream in list(self._pairs):
            for writer in (client, upstream):
                transport = writer.transport
                transport.abort()  # RST: no clean end of the response
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        pair = (writer, up_writer)
        self._pairs.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool):
            try:
                while data := await src.read(65536):
                    if record and data[:4] in (b"GET ", b"POST"):
                        self.heads.append(data.split(b"\r\n\r\n")[0].decode("latin-1"))
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        self._pairs.discard(pair)
