"""The engine's spans, recorded as finished SDK spans and handed to the batch processor.

The SDK's live `Span` (sampler, locks, attribute cleaning, context attach and detach) costs
about 30 µs to start and end, several times a step. The engine knows when its own spans start
and end, so it keeps an open span as a small object and, at its end, builds the SDK's
`ReadableSpan` and gives it to the same `BatchSpanProcessor` and OTLP exporter that export the
API's request spans. Parent and child travel in a context variable of their own
(`(trace_id, span_id, flags)`); a run's root comes from the traceparent stored with it.
Sampling follows the parent: a trigger request that was not sampled makes no engine spans.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

# (trace id, span id, trace flags, remote) of the innermost engine span, or of the run's
# remote parent (the trigger request's span, in another process or long gone).
_current: ContextVar[tuple[int, int, int, bool] | None] = ContextVar("loopllama_span", default=None)
_SAMPLED = 1
_FLAGS = [TraceFlags(n) for n in range(256)]
_UNSET = Status(StatusCode.UNSET)


class OpenSpan:
    __slots__ = ("attributes", "error", "kind", "name", "parent", "remote", "span_id", "start")
    __slots__ += ("flags", "trace_id")

    def __init__(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self.error: BaseException | None = None

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self.attributes.update(attributes)


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """`00-<trace id>-<span id>-<flags>` as integers; None when absent or malformed."""
    if not value:
        return None
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    return (trace_id, span_id, flags) if trace_id and span_id else None


def current_trace_id() -> int | None:
    found = _current.get()
    return found[0] if found is not None else None


class Recorder:
    def __init__(self, processor: Any, resource: Any, version: str) -> None:
        self._processor = processor
        self._resource = resource
        self._scope = InstrumentationScope("loopllama", version)

    @contextmanager
    def remote_parent(self, traceparent: str | None) -> Iterator[None]:
        """Engine spans inside the block continue the trace of `traceparent` (a run's)."""
        parent = parse_traceparent(traceparent)
        if parent is None:
            yield
            return
        token = _current.set((*parent, True))
        try:
            yield
        finally:
            _current.reset(token)

    def span(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> _Scope:
        """A context manager (a small class: cheaper than a generator) yielding the open span,
        or None when the trace is not sampled."""
        return _Scope(self, name, kind, attributes)

    def _emit(self, span: OpenSpan, end: int) -> None:
        flags = _FLAGS[span.flags & 0xFF]
        events: tuple[Event, ...] = ()
        status = _UNSET
        if span.error is not None:
            kind = type(span.error).__name__
            status = Status(StatusCode.ERROR, kind)
            span.attributes["error.type"] = kind  # the GenAI conventions' failure attribute
            exception = {"exception.type": kind, "exception.message": str(span.error)}
            events = (Event("exception", exception, end),)
        parent = None
        if span.parent:
            parent = SpanContext(
                span.trace_id, span.parent, is_remote=span.remote, trace_flags=flags
            )
        self._processor.on_end(
            ReadableSpan(
                name=span.name,
                context=SpanContext(
                    span.trace_id, span.span_id, is_remote=False, trace_flags=flags
                ),
                parent=parent,
                resource=self._resource,
                attributes=span.attributes,
                events=events,
                kind=span.kind,
                status=status,
                start_time=span.start,
                end_time=end,
                instrumentation_scope=self._scope,
            )
        )


class _Scope:
    __slots__ = ("_recorder", "_span", "_token")

    def __init__(
        self, recorder: Recorder, name: str, kind: SpanKind, attributes: dict[str, Any]
    ) -> None:
        self._recorder = recorder
        parent = _current.get()
        if parent is not None and not parent[2] & _SAMPLED:
            self._span = None
            return
        span = self._span = OpenSpan(name, kind, attributes)
        if parent is None:
            span.trace_id, span.parent, span.flags = random.getrandbits(128) or 1, 0, _SAMPLED
            span.remote = False
        else:
            span.trace_id, span.parent, span.flags, span.remote = parent
        span.span_id = random.getrandbits(64) or 1

    def __enter__(self) -> OpenSpan | None:
        span = self._span
        if span is not None:
            self._token = _current.set((span.trace_id, span.span_id, span.flags, False))
            span.start = time.time_ns()
        return span

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        span = self._span
        if span is None:
            return
        _current.reset(self._token)
        span.error = error
        self._recorder._emit(span, time.time_ns())
