"""What the engine and the API tell operators: metrics, traces and log fields, one tiny
interface, free when nothing is configured.

    configure(...)      at process start (API lifespan, worker): metrics when a port is set,
                        traces when OTEL_EXPORTER_OTLP_ENDPOINT is; `shutdown()` flushes both
    run_pass(run)       one engine pass over a run: continues the trigger's trace, log fields
    step(...)           `invoke_agent {role}` span, step duration, the `step` log field
    model_call(...)     `chat {model}` span (gen_ai.* attributes), duration and tokens
    tool_call(...)      `execute_tool {name}` span and duration
    run_reached(status) runs by status
    traceparent()       the current trace context, stored with a new run

Off (the default), every probe is a shared no-op object: no span, no clock read, no label
lookup. See metrics.py, tracing.py and logs.py for each signal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from loopllama.telemetry import fields

if TYPE_CHECKING:
    from loopllama.settings import TelemetrySettings
    from loopllama.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

_metrics: Metrics | None = None
_metrics_server: Any = None
_provider: Any = None  # the OpenTelemetry TracerProvider when traces are on (API requests)
_tracer: Any = None  # the engine's span recorder (spans.py) when traces are on
_capture = False  # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true
_CLIENT: Any = None  # SpanKind members, bound when traces start
_INTERNAL: Any = None

# Built-in tools keep their names as a label; a workflow's own tools are all `custom`.
_BUILTIN_TOOLS = frozenset({"send_email", "http_request", "ask_human"})


def configure(settings: TelemetrySettings, database_url: str) -> None:
    """Turn on what the settings and the OTEL_* variables ask for (idempotent per process)."""
    global _metrics, _metrics_server
    if settings.metrics_port is not None and _metrics is None:
        from loopllama.telemetry.metrics import Metrics

        _metrics = Metrics()
        _metrics.watch_database(database_url)
        _metrics_server = _metrics.serve(settings.metrics_port, settings.metrics_host)
    _start_traces()


def instrument(app: Any) -> None:
    """Server spans for the API's requests, when traces are on (before the app starts)."""
    if _start_traces():
        from loopllama.telemetry.tracing import instrument_app

        instrument_app(app, _provider)


def _start_traces() -> bool:
    global _provider, _tracer, _capture, _CLIENT, _INTERNAL
    from loopllama.telemetry import tracing

    if _provider is None and tracing.wanted():
        from opentelemetry.trace import SpanKind

        from loopllama import __version__
        from loopllama.telemetry.spans import Recorder

        _CLIENT, _INTERNAL = SpanKind.CLIENT, SpanKind.INTERNAL
        _provider, processor = tracing.start_provider()
        _tracer = Recorder(processor, _provider.resource, __version__)
        _capture = tracing.capture_content()
        log.info("traces: exporting over OTLP/HTTP")
    return _provider is not None


def shutdown() -> None:
    """Flush the spans still buffered and stop the metrics server (process exit, tests)."""
    global _metrics, _metrics_server, _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    if _metrics_server is not None:
        _metrics_server.shutdown()
        _metrics_server.server_close()
    if _metrics is not None:
        _metrics.close()
    _metrics = _metrics_server = _provider = _tracer = None


def active_metrics() -> Metrics | None:
    return _metrics


def traceparent() -> str | None:
    if _tracer is None:
        return None
    from loopllama.telemetry.tracing import traceparent

    return traceparent()


def trace_id() -> str | None:
    """The current trace id in hex, for log lines; None when traces are off or outside one."""
    if _tracer is None:
        return None
    from loopllama.telemetry.spans import current_trace_id

    engine = current_trace_id()
    if engine is not None:
        return format(engine, "032x")
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def run_reached(status: str) -> None:
    if _metrics is not None:
        _metrics.child(_metrics.runs, status).inc()


def http_request(method: str, route: str, status_code: int, seconds: float) -> None:
    if _metrics is not None:
        _metrics.child(_metrics.http, method, route, status_code).observe(seconds)


# -- spans and durations -----------------------------------------------------------------------


@contextmanager
def run_pass(run: dict[str, Any]) -> Iterator[None]:
    """One engine pass over `run`: log fields, and a `run` span under the trigger's trace."""
    with fields.scope(run_id=run["id"], account_id=run["account_id"]):
        if _metrics is None and _tracer is None:
            yield
            return
        if _metrics is not None:
            _metrics.active.inc()
        try:
            if _tracer is None:
                yield
                return
            attributes = {"loopllama.run.id": run["id"], "loopllama.run.attempt": run["attempt"]}
            with _tracer.remote_parent(run.get("trace_context")), _span("run", attributes):
                yield
        finally:
            if _metrics is not None:
                _metrics.active.dec()


class Probe:
    """What a probe hands its caller: the span (None when traces are off or the trace is not
    sampled), the outcome the caller sets, and the start time."""

    __slots__ = ("outcome", "span", "start")

    def __init__(self, span: Any = None) -> None:
        self.span = span
        self.outcome = "ok"
        self.start = time.perf_counter()


_NOOP = Probe()  # shared by every probe while telemetry is off; nothing reads it


@contextmanager
def step(order: int, role: str, model: str) -> Iterator[Probe]:
    """An engine pass in one step; the caller sets `probe.outcome` (done, paused, failed)."""
    with fields.scope(step=order):
        if _metrics is None and _tracer is None:
            yield _NOOP
            return
        with _span(
            f"invoke_agent {role}",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": role,
                "gen_ai.request.model": model,
                "loopllama.step.order": order,
            },
        ) as probe:
            probe.outcome = "done"
            try:
                yield probe
            finally:
                if _metrics is not None:
                    elapsed = time.perf_counter() - probe.start
                    _metrics.child(_metrics.steps, probe.outcome).observe(elapsed)


@contextmanager
def model_call(provider: str, model: str, request: Any) -> Iterator[Probe]:
    """One model call (retries included); `model_answered` records its usage."""
    if _metrics is None and _tracer is None:
        yield _NOOP
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": request.max_tokens,
    }
    if _capture and _tracer is not None:
        attributes["gen_ai.system_instructions"] = request.system
        attributes["gen_ai.input.messages"] = json.dumps([m.to_json() for m in request.messages])
    with _span(f"chat {model}", attributes, kind="client") as probe:
        try:
            yield probe
        except BaseException:
            probe.outcome = "error"
            raise
        finally:
            if _metrics is not None:
                elapsed = time.perf_counter() - probe.start
                _metrics.child(_metrics.model_calls, provider, model, probe.outcome).observe(
                    elapsed
                )


def model_answered(probe: Probe, provider: str, model: str, response: Any) -> None:
    if probe is _NOOP:
        return
    if _metrics is not None:
        _metrics.child(_metrics.tokens, "input", provider, model).inc(response.tokens_in)
        _metrics.child(_metrics.tokens, "output", provider, model).inc(response.tokens_out)
    if probe.span is not None:
        attributes = {
            "gen_ai.response.model": getattr(response, "model", None) or model,
            "gen_ai.usage.input_tokens": response.tokens_in,
            "gen_ai.usage.output_tokens": response.tokens_out,
            "gen_ai.response.finish_reasons": (response.stop_reason,),
        }
        if _capture:
            attributes["gen_ai.output.messages"] = json.dumps([response.message.to_json()])
        probe.span.set_attributes(attributes)


@contextmanager
def tool_call(name: str, call_id: str, arguments: Any) -> Iterator[Probe]:
    """One tool call; the caller sets `probe.outcome` to error when the tool reported one."""
    if _metrics is None and _tracer is None:
        yield _NOOP
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
    }
    if _capture and _tracer is not None:
        attributes["gen_ai.tool.call.arguments"] = json.dumps(arguments)
    with _span(f"execute_tool {name}", attributes) as probe:
        try:
            yield probe
        finally:
            if probe.outcome != "ok" and probe.span is not None:
                probe.span.set_attribute("error.type", "tool_error")
            if _metrics is not None:
                label = name if name in _BUILTIN_TOOLS else "custom"
                elapsed = time.perf_counter() - probe.start
                _metrics.child(_metrics.tool_calls, label, probe.outcome).observe(elapsed)


def tool_result(probe: Probe, content: str) -> None:
    if _capture and probe.span is not None:
        probe.span.set_attribute("gen_ai.tool.call.result", content)


@contextmanager
def _span(name: str, attributes: dict[str, Any], kind: str = "internal") -> Iterator[Probe]:
    """An engine span around the block (spans.py); an exception marks it as an error."""
    if _tracer is None:
        yield Probe()
        return
    with _tracer.span(name, _CLIENT if kind == "client" else _INTERNAL, attributes) as span:
        yield Probe(span)
