"""The HTTP/1.1 connection handler of `loopllama serve`: uvicorn's httptools protocol with a
read deadline, so slow and idle clients cannot hold connections open.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but has no bound on
the time a client takes to send a request: a connection that trickles its headers (slowloris)
or its body stays open for as long as the client likes. Here every request (headers and body)
must arrive within `read_timeout` seconds of the connection opening or of the request's first
byte, or the connection is closed; the headers of one request are bounded in size too.

Why not another server: Granian (Rust) bounds header reads but not body reads and would change
how the whole service runs; Hypercorn's `read_timeout` bounds the gap between two reads, not
the request, so a byte every few seconds keeps a connection alive. An ASGI middleware sees a
request only once its headers are complete. This subclass keeps uvicorn (its tests, its
behaviour) and adds the two missing bounds where the bytes arrive.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from loopllama.limits import MAX_HEADER_BYTES


class ReadDeadlineProtocol(HttpToolsProtocol):
    # Slots, not instance attributes: uvicorn's protocol already has as many attributes as a
    # compact instance dict holds, and five more grew each connection's dict from 0.3 to
    # 1.5 KiB (an idle event stream is mostly its connection).
    __slots__ = ("_deadline", "_head_bytes", "_reading_head", "_tail", "read_timeout")

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = True  # between requests or inside a request line and headers
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far: its end may straddle two reads

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            # A handler waiting for the rest of the body sees the client disconnect.
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a full request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head and not self.transport.is_closing():
            # The parser buffers a request's head until its end: bound what it may hold. Only
            # the bytes up to the blank line that ends the head count, so a large body sent in
            # the same packet is not mistaken for headers.
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            if self._head_bytes > MAX_HEADER_BYTES:
                self._refuse(b"431 Request Header Fields Too Large", "Request headers too large")
                return
            self._tail = window[-3:]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a keep-alive connection's next request

    def on_headers_complete(self) -> None:
        self._reading_head, self._tail = False, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head, self._head_bytes, self._tail = True, 0, b""
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, in our envelope."""
        self._refuse(b"400 Bad Request", "Malformed HTTP request")

    def _refuse(self, status: bytes, message: str) -> None:
        body = orjson.dumps({"error": message})
        head = [b"HTTP/1.1 " + status]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()
