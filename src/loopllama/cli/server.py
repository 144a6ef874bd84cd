"""Server-side commands: serve, worker, migrate, keys. They import the server only when run."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import click


def register(cli: click.Group) -> None:
    from loopllama.cli.keys import keys
    from loopllama.cli.worker import worker

    cli.add_command(serve)
    cli.add_command(worker)
    cli.add_command(migrate)
    cli.add_command(keys)


def _settings() -> Any:
    try:
        from loopllama.settings import Settings
    except ImportError:
        raise click.ClickException(
            "the server is not installed: pip install 'loopllama[server]'"
        ) from None
    return Settings()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Serve the API only; `loopllama worker` processes execute the runs (PostgreSQL).",
)
def serve(host: str, port: int, no_worker: bool) -> None:
    """Run the API and the run engine (migrating the database first)."""
    settings = _settings()
    import uvicorn

    from loopllama.api.app import create_app
    from loopllama.api.protocol import ReadDeadlineProtocol
    from loopllama.store.db import is_sqlite

    if no_worker and is_sqlite(settings.database.url):
        raise click.UsageError(
            "--no-worker needs PostgreSQL (LOOPLLAMA_DATABASE_URL=postgresql://...): on SQLite "
            "the serving process is the only one that can execute runs"
        )

    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2"):  # one INFO line per model call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = create_app(settings, run_engine=not no_worker)
    server = settings.server
    uvicorn.run(
        app,
        host=host,
        port=port,
        # Slow and idle clients are cut off (see api/protocol.py).
        http=functools.partial(ReadDeadlineProtocol, read_timeout=server.request_read_timeout),
        timeout_keep_alive=server.keep_alive_timeout,
        log_level=settings.server.log_level.lower(),
        access_log=False,
        # Finish in-flight requests, then stop; unfinished runs resume at the next start.
        timeout_graceful_shutdown=10,
    )


@click.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this too)."""
    settings = _settings()
    from loopllama.store.migrate import upgrade

    upgrade(settings.database.url)
    click.echo("database is up to date")


async def with_db(action: Any) -> Any:
    """`await action(conn)` in one write transaction on the (migrated) server database."""
    from loopllama.store.db import Database
    from loopllama.store.migrate import upgrade

    settings = _settings()
    await asyncio.to_thread(upgrade, settings.database.url)
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            return await action(conn)
    finally:
        await db.dispose()
