"""A real HTTP server on 127.0.0.1 that speaks the Anthropic and OpenAI wire formats.

Provider, engine, API and crash tests (and benchmarks, also from subprocesses) point the real
SDKs at it instead of a vendor:

    with FakeProviderServer() as srv:
        srv.enqueue("hello", overloaded(), tool_call("search", {"q": "x"}))
        AsyncAnthropic(base_url=srv.url, ...)            # POST /v1/messages
        AsyncOpenAI(base_url=srv.openai_url, ...)         # POST /v1/chat/completions
        srv.requests[0].system, srv.requests[0].headers["authorization"], len(srv.requests)

How it answers: each request pops the next scripted item, whatever the endpoint, and renders it
in that endpoint's vendor format. An item is

    "text"                       a text reply (shorthand for `Reply("text")`; `text(t, 12, 3)`
                                 sets the token counts)
    Reply(text, tool_calls, tokens_in, tokens_out, usage, delay, stop_reason)
    tool_call(name, input, ...)  a `Reply` asking for one tool (`tool_use` / `tool_calls`)
    error(status, message, retry_after=...), overloaded(), rate_limited(retry_after)
                                 an error status with a vendor-shaped body (and Retry-After)
    ErrorReply(status, body=..., headers=...)
                                 any status with a raw body (HTML from a proxy, broken JSON)
    stall(seconds)               the default reply, late enough to trip a client timeout
    hang(seconds)                no answer: hold the request open until the client closes the
                                 connection (recorded in `disconnects`) or `seconds` pass
    Drop()                       close the connection without answering
    a callable                   called (in the server thread) with the `RecordedRequest`,
                                 returns one of the above

With nothing scripted it answers `echo: <last user text>`, with token counts of about one per
four characters. `delay` (constructor argument or attribute) is added to every answer: the fixed
latency of a benchmark.

Streaming: a request with `"stream": true` gets the same reply as the vendor's Server-Sent Events
(Anthropic `message_start` ... `content_block_delta` ... `message_stop`; OpenAI
`chat.completion.chunk`s, the usage chunk when `stream_options.include_usage`, `[DONE]`), in
chunked transfer encoding. The text goes out in `Reply.chunks` pieces (default: word by word),
`chunk_delay` seconds apart; `sent_chunks` records `(time.perf_counter(), text)` as each piece is
written (benchmarks measure delta latency from it).

Every request is recorded (`requests`, a `RecordedRequest` with parsed JSON body, lowercased
headers and `arrived`, a `time.perf_counter()` stamp) before it is answered, so a test can count
attempts, even those the client gave up on. `enqueue`, `requests`, `clear` and `wait_for_requests`
are thread-safe: the server runs its own event loop in a daemon thread.

The transport is a small asyncio HTTP/1.1 server (Content-Length and chunked bodies, keep-alive)
rather than uvicorn: a keep-alive round trip costs about 0.2 ms, which matters to benchmarks
that run it with zero latency.

Run `python -m tests.fakes.provider_server [--port N] [--delay S] [--log FILE]` to serve from
another process; it prints the URL on its first line. `--log` writes one JSON line per model
request (arrival time, model, prompts) for benchmarks that check runs end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
_APIS: dict[str, Literal["anthropic", "openai"]] = {
    ANTHROPIC_PATH: "anthropic",
    OPENAI_PATH: "openai",
}
_MAX_HEADER_BYTES = 64 * 1024

# ---------------------------------------------------------------------------------------------
# Script items
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call in a reply. A `str` input is sent verbatim (OpenAI: invalid JSON tests)."""

    name: str
    input: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None  # None: toolu_N / call_N


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer. `text=None` means the default echo of the last user text."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tokens_in: int | None = None  # None: derived from the request's length
    tokens_out: int | None = None  # None: derived from the reply's length
    usage: bool = True  # False: no usage object at all (some OpenAI-compatible servers)
    delay: float = 0.0  # seconds, on top of the server's `delay`
    stop_reason: str | None = None  # None: end_turn / tool_use (stop / tool_calls)
    chunks: tuple[str, ...] | None = None  # streamed text pieces; None: word by word
    chunk_delay: float = 0.0  # seconds between streamed pieces


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error status. The body is vendor-shaped from `message` and `type` unless `body` is set."""

    status: int
    message: str | None = None  # None: a default per status ("Overloaded" for 529, ...)
    type: str | None = None  # None: the vendor's type for the status
    retry_after: float | str | None = None  # sent as the Retry-After header
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # a raw body instead of the vendor JSON (proxies' HTML pages)
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: wait for the client to close the connection (a cancelled request)."""

    seconds: float = 60.0
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A hung request whose client closed the connection, and when (`time.perf_counter()`)."""

    request: RecordedRequest
    closed: float


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without answering (the client sees a protocol error)."""

    delay: float = 0.0


Item = Reply | ErrorReply | Drop | Hang
Script = Item | str | Callable[["RecordedRequest"], Item | str]


def text(text: str, tokens_in: int | None = None, tokens_out: int | None = None) -> Reply:
    return Reply(text, tokens_in=tokens_in, tokens_out=tokens_out)


def tool_call(
    name: str,
    input: dict[str, Any] | str | None = None,
    *,
    id: str | None = None,
    text: str = "",
    tokens_in: int | None = None,
    tokens_out: int | None = None,
) -> Reply:
    return Reply(text, (ToolCall(name, {} if input is None else input, id),), tokens_in, tokens_out)


def error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | str | None = None,
    type: str | None = None,
) -> ErrorReply:
    return ErrorReply(status, message, type, retry_after)


def overloaded() -> ErrorReply:
    return ErrorReply(529)


def rate_limited(retry_after: float | str | None = 1) -> ErrorReply:
    return ErrorReply(429, retry_after=retry_after)


def stall(seconds: float) -> Reply:
    return Reply(delay=seconds)


def hang(seconds: float = 60.0) -> Hang:
    return Hang(seconds)


# Vendor error types and default messages, per status.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {429: "rate_limit_error"}
_MESSAGES = {
    400: "Invalid request",
    401: "Invalid API key",
    404: "Not found",
    429: "Rate limit exceeded",
    500: "Internal server error",
    529: "Overloaded",
}

# ---------------------------------------------------------------------------------------------
# Recorded requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lowercased names
    body: Any  # parsed JSON, or None when the body is empty or not JSON
    raw: bytes
    arrived: float  # time.perf_counter() when the request was fully read
    api: Literal["anthropic", "openai"] | None

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        return self.body.get("tools", []) if isinstance(self.body, dict) else []

    @property
    def system(self) -> str | None:
        """Anthropic's `system` field, or the content of OpenAI's leading system message."""
        if not isinstance(self.body, dict):
            return None
        if self.api == "anthropic":
            system = self.body.get("system")
            return _blocks_text(system) if isinstance(system, list) else system
        first = self.messages[0] if self.messages else {}
        return first.get("content") if first.get("role") in ("system", "developer") else None

    @property
    def last_user_text(self) -> str:
        """Text of the last user turn (tool results included), as the default reply echoes it."""
        for message in reversed(self.messages):
            if message.get("role") in ("user", "tool"):
                content = message.get("content")
                return content if isinstance(content, str) else _blocks_text(content or [])
        return ""


def _blocks_text(blocks: list[Any]) -> str:
    texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    if not texts:  # a tool-result turn: echo the results
        texts = [
            b["content"] if isinstance(b.get("content"), str) else _blocks_text(b["content"])
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("content")
        ]
    return "".join(texts)


def _tokens(chars: int) -> int:
    return max(1, -(-chars // 4))


# ---------------------------------------------------------------------------------------------
# Rendering in each vendor's format
# ---------------------------------------------------------------------------------------------

Response = tuple[int, dict[str, str], bytes]


class _Renderer:
    """Turns script items into wire responses; ids come from one counter per server."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def reply(self, req: RecordedRequest, reply: Reply) -> Response:
        text = f"echo: {req.last_user_text}" if reply.text is None else reply.text
        tokens_in = reply.tokens_in
        if tokens_in is None:
            tokens_in = _tokens(len(json.dumps(req.messages)) + len(req.system or ""))
        tokens_out = reply.tokens_out
        if tokens_out is None:
            tokens_out = _tokens(len(text) + sum(len(str(c.input)) for c in reply.tool_calls))
        n = next(self._ids)
        if req.api == "anthropic":
            content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for i, call in enumerate(reply.tool_calls):
                call_id = call.id or f"toolu_{n}_{i}"
                content.append(
                    {"type": "tool_use", "id": call_id, "name": call.name, "input": call.input}
                )
            body: dict[str, Any] = {
                "id": f"msg_{n}",
                "type": "message",
                "role": "assistant",
                "model": req.model,
                "content": content,
                "stop_reason": reply.stop_reason
                or ("tool_use" if reply.tool_calls else "end_turn"),
                "stop_sequence": None,
            }
            if reply.usage:
                body["usage"] = {"input_tokens": tokens_in, "output_tokens": tokens_out}
            return _json(200, body)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{n}_{i}",
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.input
                        if isinstance(call.input, str)
                        else json.dumps(call.input),
                    },
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        body = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply.stop_reason
                    or ("tool_calls" if reply.tool_calls else "stop"),
                }
            ],
        }
        if reply.usage:
            body["usage"] = {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            }
        return _json(200, body)

    def stream(self, req: RecordedRequest, reply: Reply) -> list[tuple[str | None, bytes]]:
        """The reply as SSE frames, each with the text piece it carries (None: no text)."""
        _status, _headers, payload = self.reply(req, reply)
        body = json.loads(payload)
        text = (
            "".join(b.get("text", "") for b in body.get("content", []) if b.get("type") == "text")
            if req.api == "anthropic"
            else (body["choices"][0]["message"]["content"] or "")
        )
        pieces = list(reply.chunks) if reply.chunks is not None else _words(text)
        if req.api == "anthropic":
            return _anthropic_frames(body, pieces)
        include_usage = bool((req.body.get("stream_options") or {}).get("include_usage"))
        return _openai_frames(body, pieces, include_usage)

    @staticmethod
    def error(req: RecordedRequest, err: ErrorReply) -> Response:
        headers = dict(err.headers)
        if err.retry_after is not None:
            headers["retry-after"] = str(err.retry_after)
        if err.body is not None:
            return err.status, {"content-type": "text/plain", **headers}, err.body.encode()
        message = err.message or _MESSAGES.get(err.status) or _reason(err.status).capitalize()
        if req.api == "openai":
            kind = (
                err.type
                or _OPENAI_TYPES.get(err.status)
                or ("server_error" if err.status >= 500 else "invalid_request_error")
            )
            body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        else:
            kind = err.type or _ANTHROPIC_TYPES.get(err.status, "api_error")
            body = {"type": "error", "error": {"type": kind, "message": message}}
        status, base, payload = _json(err.status, body)
        return status, {**base, **headers}, payload


def _words(text: str) -> list[str]:
    pieces, word = [], ""
    for char in text:
        word += char
        if char == " ":
            pieces.append(word)
            word = ""
    return [*pieces, word] if word else pieces


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def _anthropic_frames(body: dict[str, Any], pieces: list[str]) -> list[tuple[str | None, bytes]]:
    usage = body.get("usage")
    start = {k: v for k, v in body.items() if k not in ("content", "usage")}
    start.update(content=[], stop_reason=None)
    if usage is not None:
        start["usage"] = {"input_tokens": usage["input_tokens"], "output_tokens": 1}
    frames: list[tuple[str | None, bytes]] = [
        (None, _sse("message_start", {"type": "message_start", "message": start}))
    ]
    for index, block in enumerate(body["content"]):
        if block["type"] == "text":
            empty = {"type": "text", "text": ""}
            frames.append(
                (
                    None,
                    _sse(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": empty},
                    ),
                )
            )
            for piece in pieces:
                delta = {"type": "text_delta", "text": piece}
                frames.append(
                    (
                        piece,
                        _sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        ),
                    )
                )
        else:
            frames.append(
                (
                    None,
                    _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {**block, "input": {}},
                        },
                    ),
                )
            )
            raw = json.dumps(block["input"])
            for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": part}
                frames.append(
                    (
                        None,
                        _sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        ),
                    )
                )
        frames.append(
            (None, _sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        )
    delta = {"stop_reason": body["stop_reason"], "stop_sequence": None}
    end: dict[str, Any] = {"type": "message_delta", "delta": delta}
    end["usage"] = {"output_tokens": usage["output_tokens"] if usage else 0}
    frames.append((None, _sse("message_delta", end)))
    frames.append((None, _sse("message_stop", {"type": "message_stop"})))
    return frames


def _openai_frames(
    body: dict[str, Any], pieces: list[str], include_usage: bool
) -> list[tuple[str | None, bytes]]:
    base = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse(None, {**base, "choices": [choice]})

    choice = body["choices"][0]
    frames: list[tuple[str | None, bytes]] = [(None, chunk({"role": "assistant", "content": ""}))]
    frames += [(piece, chunk({"content": piece})) for piece in pieces]
    for index, call in enumerate(choice["message"].get("tool_calls") or []):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        frames.append((None, chunk({"tool_calls": [head]})))
        raw = call["function"]["arguments"]
        for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
            args = {"index": index, "function": {"arguments": part}}
            frames.append((None, chunk({"tool_calls": [args]})))
    frames.append((None, chunk({}, choice["finish_reason"])))
    if include_usage and "usage" in body:
        frames.append((None, _sse(None, {**base, "choices": [], "usage": body["usage"]})))
    frames.append((None, _sse(None, "[DONE]")))
    return frames


def _json(status: int, body: Any) -> Response:
    return status, {"content-type": "application/json"}, json.dumps(body).encode()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class FakeProviderServer:
    """Anthropic- and OpenAI-compatible HTTP server on 127.0.0.1, scripted from any thread."""

    def __init__(self, *, delay: float = 0.0, port: int = 0) -> None:
        self.delay = delay
        self._port = port
        self._lock = threading.Condition()
        self._script: deque[Script] = deque()
        self._requests: list[RecordedRequest] = []
        self.sent_chunks: list[tuple[float, str]] = []
        self._disconnects: list[Disconnect] = []
        self._render = _Renderer()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._sock: socket.socket | None = None
        self._bound_port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port; still valid after `stop()` (a closed port, for connection errors)."""
        if self._bound_port is None:
            raise RuntimeError("FakeProviderServer is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """Base URL for Anthropic (`base_url=srv.url`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI (`base_url=srv.openai_url`, i.e. url + "/v1")."""
        return f"{self.url}/v1"

    def start(self) -> FakeProviderServer:
        # The socket is bound here, in the caller's thread, so `url` is valid on return.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(1024)
        self._sock = sock
        self._bound_port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="fake-provider", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise RuntimeError("fake provider server failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()
        self._loop = self._stop = self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection (thread-safe) ---------------------------------------------------

    def enqueue(self, *items: Script) -> None:
        """Answer the next requests with these items, in order."""
        with self._lock:
            self._script.extend(items)

    @property
    def pending(self) -> int:
        """Scripted items not consumed yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self._requests[-1]

    @property
    def disconnects(self) -> list[Disconnect]:
        """Hung requests (`hang`) whose client closed the connection, oldest first."""
        with self._lock:
            return list(self._disconnects)

    def wait_for_disconnects(self, count: int, timeout: float = 5.0) -> list[Disconnect]:
        """Block until `count` hung requests were closed by their client."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._disconnects) >= count, timeout):
                raise TimeoutError(f"{len(self._disconnects)} disconnects, not {count}")
            return list(self._disconnects)

    def clear(self) -> None:
        """Forget recorded requests, sent chunks, disconnects and scripted items."""
        with self._lock:
            self._requests.clear()
            self._disconnects.clear()
            self._script.clear()
            self.sent_chunks.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; raise TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} requests received, not {count}")
            return list(self._requests)

    # -- the event loop thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start() instead of dying silently
            self._startup_error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                # Shutdown. Finishing normally matters: on 3.11 asyncio's stream callback calls
                # `task.exception()`, which raises (and logs) for a cancelled task.
                pass
            finally:
                connections.discard(task)

        assert self._sock is not None
        server = await asyncio.start_server(on_connect, sock=self._sock, limit=_MAX_HEADER_BYTES)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # small JSON answers: don't let Nagle hold them back
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, target, headers, raw = request
                recorded = self._record(method, target, headers, raw)
                response = await self._answer(recorded)
                if isinstance(response, Hang):
                    await self._hang(recorded, reader, response.seconds)
                    return
                if response is None:  # Drop
                    return
                keep_alive = headers.get("connection", "").lower() != "close"
                if isinstance(response, _Streamed):
                    await self._write_stream(writer, response, keep_alive)
                else:
                    status, extra, payload = response
                    writer.write(_encode(status, extra, payload, keep_alive))
                    await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return  # the client went away (e.g. it timed out) or sent garbage
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _record(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> RecordedRequest:
        path = target.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        api = _APIS.get(path)
        recorded = RecordedRequest(method, path, headers, body, raw, time.perf_counter(), api)
        with self._lock:
            self._requests.append(recorded)
            self._lock.notify_all()
        return recorded

    async def _write_stream(
        self, writer: asyncio.StreamWriter, streamed: _Streamed, keep_alive: bool
    ) -> None:
        head = [
            "HTTP/1.1 200 OK",
            "content-type: text/event-stream",
            "transfer-encoding: chunked",
            "connection: keep-alive" if keep_alive else "connection: close",
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for index, (piece, frame) in enumerate(streamed.frames):
            if piece is not None and index and streamed.delay:
                await asyncio.sleep(streamed.delay)
            if piece is not None:  # recorded before it leaves: a client never sees it first
                with self._lock:
                    self.sent_chunks.append((time.perf_counter(), piece))
            writer.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _hang(
        self, req: RecordedRequest, reader: asyncio.StreamReader, seconds: float
    ) -> None:
        """Hold the request until the client closes its connection (EOF) or `seconds` pass."""
        try:
            data = await asyncio.wait_for(reader.read(1), seconds)
        except TimeoutError:
            return
        except ConnectionError:  # a reset: closed too
            data = b""
        if data == b"":
            with self._lock:
                self._disconnects.append(Disconnect(req, time.perf_counter()))
                self._lock.notify_all()

    async def _answer(self, req: RecordedRequest) -> Response | _Streamed | Hang | None:
        if req.api is None or req.method != "POST":
            return _json(404, {"error": {"type": "not_found_error", "message": "Not found"}})
        if not isinstance(req.body, dict):
            item: Item = ErrorReply(400, "the fake provider server takes JSON bodies only")
        else:
            with self._lock:
                scripted = self._script.popleft() if self._script else Reply()
            if callable(scripted):
                scripted = scripted(req)
            item = Reply(scripted) if isinstance(scripted, str) else scripted
        delay = self.delay + item.delay
        if delay > 0:
            await asyncio.sleep(delay)
        if isinstance(item, Drop):
            return None
        if isinstance(item, Hang):
            return item
        if isinstance(item, ErrorReply):
            return self._render.error(req, item)
        if req.body.get("stream"):
            return _Streamed(self._render.stream(req, item), item.chunk_delay)
        return self._render.reply(req, item)


@dataclass(frozen=True, slots=True)
class _Streamed:
    frames: list[tuple[str | None, bytes]]
    delay: float


# ---------------------------------------------------------------------------------------------
# HTTP/1.1, just enough of it
# ---------------------------------------------------------------------------------------------


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    """One request off a keep-alive connection; None when the client closed it cleanly."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        return method, target, headers, b"".join(chunks)
    length = int(headers.get("content-length", "0"))
    return method, target, headers, await reader.readexactly(length) if length else b""


def _encode(status: int, headers: dict[str, str], payload: bytes, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(payload)}")
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class _LoggingServer(FakeProviderServer):
    """The server of `main --log FILE`: one JSON line per model request, written as it is
    answered (line-buffered, so a benchmark can read the file while the server runs).

    Each line: `t` (arrival, `time.time()`, the clock other processes on the machine share),
    `handled_ms` (arrival to the answer being ready, the fixed delay included), `model`,
    `system` and `user` (the last user text). Benchmarks check runs against it: how many calls,
    in which order, with which prompts."""

    def __init__(self, log: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._log = log

    async def _answer(self, req: RecordedRequest) -> Response | _Streamed | Hang | None:
        # `arrived` is perf_counter; moved onto the wall clock for other processes.
        arrived = time.time() - (time.perf_counter() - req.arrived)
        response = await super()._answer(req)
        handled = (time.time() - arrived) * 1000
        line = {
            "t": arrived,
            "handled_ms": round(handled, 4),
            "model": req.model,
            "system": req.system,
            "user": req.last_user_text,
        }
        self._log.write(json.dumps(line) + "\n")
        return response


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake Anthropic/OpenAI API.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--log", help="append one JSON line per model request to this file")
    args = parser.parse_args()
    log = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115
    server = (
        _LoggingServer(log, delay=args.delay, port=args.port)
        if log
        else FakeProviderServer(delay=args.delay, port=args.port)
    )
    with server as srv:
        print(srv.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
