"""Prometheus metrics: what this process counts, and what the database says at scrape time.

Counters and histograms are per process (Prometheus sums them across processes). The gauges
that describe the whole system (`loopllama_queue_depth`, `loopllama_queue_oldest_age_seconds`,
`loopllama_runs_waiting_input`) are read from the database when Prometheus scrapes, with one
indexed query, so every process reports the same value: graph them with `max()`, not `sum()`.

Labels never carry an account id, a key or user text: `status`, `direction`, `provider`,
`model` (a routed model name), `tool` (a built-in's name, or `custom`), HTTP `method`, `route`
(the route's template, `/v1/runs/{run_id}`) and `status_code`.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import create_engine, func, select

from loopllama.store.db import configure_sqlite_connection, is_sqlite, sync_url
from loopllama.store.tables import runs

log = logging.getLogger(__name__)

# Model calls last seconds; steps up to minutes; HTTP requests milliseconds.
_SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Every metric of one process, on its own registry (never the global default one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(standard)  # process_*, python_info, python_gc_*
        self.runs = Counter(
            "loopllama_runs",
            "Runs that reached a status: queued (triggered), waiting_input (paused for a "
            "person), completed, failed.",
            ["status"],
            registry=r,
        )
        self.steps = Histogram(
            "loopllama_step_duration_seconds",
            "Time one engine pass spent in a step (model calls and tools), by how it ended: "
            "done, paused or failed.",
            ["outcome"],
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.model_calls = Histogram(
            "loopllama_model_call_duration_seconds",
            "One model call, retries included, by provider, model and outcome (ok, error).",
            ["provider", "model", "outcome"],
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "loopllama_tokens",
            "Tokens consumed by model calls: direction input or output.",
            ["direction", "provider", "model"],
            registry=r,
        )
        self.tool_calls = Histogram(
            "loopllama_tool_call_duration_seconds",
            "One tool call: tool is a built-in's name or custom; outcome ok or error.",
            ["tool", "outcome"],
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.http = Histogram(
            "loopllama_http_request_duration_seconds",
            "API requests by method, route template and status code.",
            ["method", "route", "status_code"],
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self._gauges: _DatabaseGauges | None = None
        self._children: dict[tuple, Any] = {}
        self.active = Gauge(
            "loopllama_runs_in_progress",
            "Runs this process is advancing right now.",
            registry=r,
        )

    def child(self, metric: Any, *labels: Any) -> Any:
        """`metric.labels(*labels)`, memoised: the client's lookup takes a lock and validates
        the labels each time (about 3 µs), and the engine records several metrics per step."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*(str(v) for v in labels))
        return found

    def watch_database(self, database_url: str) -> None:
        """Report the system-wide gauges from `database_url` at scrape time."""
        self._gauges = _DatabaseGauges(database_url)
        self.registry.register(self._gauges)

    def close(self) -> None:
        if self._gauges is not None:
            self._gauges.close()

    def serve(self, port: int, host: str) -> Any:
        """Serve /metrics on its own port, from a daemon thread; returns the server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, server.server_port)
        return server


class _DatabaseGauges(Collector):
    """Queue depth, age of the oldest queued run and paused runs, read at scrape time.

    Its own small synchronous engine (scrapes come on the metrics server's thread): one
    connection, two queries on the status index, a few milliseconds every scrape interval.
    """

    def __init__(self, database_url: str) -> None:
        sqlite = is_sqlite(database_url)
        self._engine = create_engine(
            sync_url(database_url),
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=True,
            **({"connect_args": {"check_same_thread": False}} if sqlite else {}),
        )
        if sqlite:
            from sqlalchemy import event

            event.listen(self._engine, "connect", lambda c, _r: configure_sqlite_connection(c))
        self._lock = threading.Lock()
        self._queued = (
            select(func.count(), func.min(runs.c.created_at))
            .select_from(runs)
            .where(runs.c.status == "queued")
        )
        self._waiting = (
            select(func.count()).select_from(runs).where(runs.c.status == "waiting_input")
        )

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()

    def describe(self) -> list[Any]:  # no query at registration time
        return []

    def collect(self) -> Any:
        try:
            with self._lock, self._engine.connect() as conn:
                queued, oldest = conn.execute(self._queued).one()
                waiting = conn.execute(self._waiting).scalar_one()
        except Exception as error:  # a scrape must not fail because the database blinks
            log.warning("metrics: database unavailable: %s", type(error).__name__)
            return
        age = 0.0
        if oldest is not None:
            if isinstance(oldest, str):
                oldest = datetime.fromisoformat(oldest)
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily(
            "loopllama_queue_depth", "Runs triggered and not yet started (system-wide).", queued
        )
        yield GaugeMetricFamily(
            "loopllama_queue_oldest_age_seconds",
            "Age of the oldest run waiting to start, 0 when none (system-wide).",
            age,
        )
        yield GaugeMetricFamily(
            "loopllama_runs_waiting_input",
            "Runs paused for a person's answer (system-wide).",
            waiting,
        )
