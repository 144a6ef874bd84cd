"""OpenTelemetry traces over OTLP/HTTP, on when the standard variables ask for them.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, unless
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The SDK's exporter and batch processor
read the other standard variables themselves (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, ...). The service is named `loopllama` unless
`OTEL_SERVICE_NAME` says otherwise.

The tracer provider is ours, not the global one: the FastAPI instrumentation is handed it, and
nothing else in the process (a library's own instrumentation) starts exporting by surprise.
A run's trace context travels as a W3C `traceparent` string in the `runs.trace_context` column,
so whichever process advances the run continues the trigger request's trace; the engine's own
spans are recorded by spans.py and exported through the same batch processor.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

# The SDK is imported only when traces are on: a process without them never loads it.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


@cache
def _propagator() -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def wanted(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def capture_content(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Prompts, completions and tool arguments go into spans only when the operator opts in."""
    value = environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    return value.strip().lower() == "true"


def start_provider() -> tuple[TracerProvider, Any]:
    """The tracer provider (for the API's request spans) and its batch processor (which the
    engine's spans are handed to directly, see spans.py)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "loopllama"}
    provider = TracerProvider(resource=Resource.create(attributes))
    processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    return provider, processor


def traceparent() -> str | None:
    """The current span's context as a W3C traceparent, or None outside any span."""
    carrier: dict[str, str] = {}
    _propagator().inject(carrier)
    return carrier.get("traceparent")


def instrument_app(app: Any, provider: TracerProvider) -> None:
    """A server span per API request (named by its route template); health checks excluded."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz",
        # The ASGI instrumentation's per-message send/receive spans only add noise here.
        exclude_spans=["receive", "send"],
    )
