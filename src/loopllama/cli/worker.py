"""`loopllama worker`: execute runs from the PostgreSQL queue, without serving the API."""

from __future__ import annotations

import asyncio

import click


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Runs advanced at once [default: LOOPLLAMA_MAX_CONCURRENT_RUNS or 1000].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds running runs get after SIGTERM before they are handed back to other "
    "workers [default: LOOPLLAMA_WORKER_GRACE or 10].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Serve Prometheus metrics on this port [default: LOOPLLAMA_METRICS_PORT, or none].",
)
def worker(concurrency: int | None, grace: float | None, metrics_port: int | None) -> None:
    """Execute runs from the queue (PostgreSQL only; start any number, anywhere).

    Migrates the database first. On SIGTERM or Ctrl-C it takes no new run, lets running ones
    go on for the grace period, hands the rest back, and exits 0.
    """
    from loopllama.cli.server import _settings
    from loopllama.store.db import is_sqlite

    settings = _settings()
    if is_sqlite(settings.database.url):
        raise click.UsageError(
            "workers share a PostgreSQL database: set LOOPLLAMA_DATABASE_URL=postgresql://... "
            "(on SQLite, `loopllama serve` runs the engine itself)"
        )
    from loopllama.engine.queue import WorkerSettings
    from loopllama.engine.queue.process import run_worker

    options = WorkerSettings()
    if grace is not None:
        options = options.model_copy(update={"grace": grace})
    if concurrency is not None:
        settings.engine.max_concurrent_runs = concurrency
    if metrics_port is not None:
        settings.telemetry.metrics_port = metrics_port
    from loopllama.telemetry.logs import configure_logging

    configure_logging(settings.server.log_level, settings.telemetry.log_format)
    try:  # uvloop (installed with the server, and what `serve` runs on): a faster event loop
        import uvloop
    except ImportError:
        asyncio.run(run_worker(settings, options))
    else:
        uvloop.run(run_worker(settings, options))
