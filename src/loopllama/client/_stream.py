"""Following a run's event stream: Server-Sent Events in, typed events out, reconnecting.

Sans-I/O like `_core.py`: `StreamState` decides what to send, reads each line, and says what
to do after a failure; the sync and async drivers in resources/runs.py only move bytes.

- Lines are decoded as the WHATWG event-stream format says (`event:`, `data:` lines joined
  with newlines, `id:`, comments starting with `:`, an event dispatched on a blank line).
- Durable events carry an id; the state keeps the last one and sends it as `Last-Event-ID`
  when it reconnects, so the server resumes right after it. An event at or below it is never
  yielded twice. `step.delta` events have no id: the ones sent while the connection was down
  are lost, as they would be for any live viewer.
- A dropped connection, a stream that ends without a terminal event, a 429 or a 5xx:
  reconnect after a backoff (at once the first time after progress). `MAX_RECONNECTS`
  consecutive failures without a new event raise the last error. 4xx errors raise at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from loopllama.client._core import Config, segment
from loopllama.client._retry import (
    Failure,
    Outcome,
    backoff,
    failure_from_exception,
    failure_from_response,
)
from loopllama.client.types import RunEvent, StepDelta

MAX_RECONNECTS = 8
# The server sends a keep-alive comment every 15 s; a read that waits longer than this means
# the connection is dead (a peer that vanished without closing it).
READ_TIMEOUT = 60.0


@dataclass
class _Pending:
    event: str = ""
    data: list[str] = field(default_factory=list)


@dataclass
class StreamState:
    config: Config
    run_id: str
    last_id: int = 0
    failures: int = 0
    done: bool = False
    _pending: _Pending = field(default_factory=_Pending)

    # -- the request ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        path = f"/v1/runs/{segment('run_id', self.run_id)}/stream"
        return self.config.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.config.api_key}",
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            **self.config.headers,
        }
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)
        return headers

    def timeout(self) -> httpx.Timeout:
        base = self.config.timeout
        return httpx.Timeout(
            connect=base.connect, read=READ_TIMEOUT, write=base.write, pool=base.pool
        )

    def connected(self) -> None:
        self._pending = _Pending()

    # -- reading -------------------------------------------------------------------------

    def feed(self, line: str) -> RunEvent | StepDelta | None:
        """One line of the body; returns an event when the line completes a new one."""
        if line == "":
            pending, self._pending = self._pending, _Pending()
            if not pending.data:
                return None
            return self._dispatch(pending.event or "message", "\n".join(pending.data))
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._pending.event = value
        elif name == "data":
            self._pending.data.append(value)
        return None  # `id:` is read from the event's JSON; `retry:` is not needed

    def _dispatch(self, kind: str, data: str) -> RunEvent | StepDelta | None:
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        if kind == "step.delta":
            return StepDelta.from_dict(payload)
        event = RunEvent.from_dict(payload)
        if event.id <= self.last_id:
            return None  # already yielded before a reconnect
        self.last_id = event.id
        self.failures = 0
        if event.is_terminal:
            self.done = True
        return event

    # -- failures ------------------------------------------------------------------------

    def on_error_response(self, response: httpx.Response) -> float:
        return self._after(failure_from_response(response))

    def on_exception(self, exc: httpx.HTTPError) -> float:
        return self._after(failure_from_exception(exc))

    def on_end(self) -> float:
        """The server closed the stream before a terminal event (a restart, a slow reader)."""
        self.failures += 1
        if self.failures > MAX_RECONNECTS:
            raise ConnectionError(f"the stream of run {self.run_id} keeps closing early")
        return 0.0 if self.failures == 1 else backoff(self.failures - 2)

    def _after(self, failure: Failure) -> float:
        """Seconds to wait before reconnecting, or raise the failure's error."""
        self.failures += 1
        if failure.outcome is Outcome.FINAL or self.failures > MAX_RECONNECTS:
            raise failure.error
        if failure.retry_after is not None:
            return min(failure.retry_after, 60.0)
        return 0.0 if self.failures == 1 else backoff(self.failures - 2)


def parse_event_page(payload: Any) -> tuple[list[RunEvent], bool]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise TypeError("no `data` list in the answer")
    events = [RunEvent.from_dict(e) for e in payload["data"] if isinstance(e, dict)]
    return events, bool(payload.get("has_more"))
