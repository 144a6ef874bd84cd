"""Server-side commands: serve, worker, migrate, keys. They import the server only when run."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import click


def register(cli: click.Group) -> None:
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
    uvicorn.run(
        app,
        host=host,
        port=port,
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


@click.group()
def keys() -> None:
    """Manage API keys."""


async def _with_db(action: Any) -> Any:
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


@keys.command("create")
@click.option("--account", required=True, help="Account name (created if new).")
@click.option("--label", default=None, help="A note to recognise the key by.")
@click.option(
    "--rate-limit",
    default=None,
    help="The key's own request limit, N/second|minute|hour (default: LOOPLLAMA_RATE_LIMIT).",
)
def keys_create(account: str, label: str | None, rate_limit: str | None) -> None:
    """Create an API key; it is printed once, on the last line."""
    from loopllama.rates import parse_rate
    from loopllama.store.keys import create_key

    if rate_limit is not None:
        try:
            rate_limit = str(parse_rate(rate_limit))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--rate-limit") from None
    key_id, key = asyncio.run(_with_db(lambda conn: create_key(conn, account, label, rate_limit)))
    click.echo(f"Created key {key_id} for account {account}. Store it now: it is shown once.")
    click.echo(key)


@keys.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    from loopllama.ids import iso
    from loopllama.store.keys import list_keys

    rows = asyncio.run(_with_db(list_keys))
    if not rows:
        click.echo("no keys")
        return
    for row in rows:
        state = f"revoked {iso(row['revoked_at'])}" if row["revoked_at"] else "active"
        label = f"  {row['label']}" if row["label"] else ""
        limit = f"  rate limit {row['rate_limit']}" if row["rate_limit"] else ""
        click.echo(f"{row['id']}  {row['hint']}  {row['account']}  {state}{limit}{label}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it fail at once."""
    from loopllama.store.keys import revoke_key

    if not asyncio.run(_with_db(lambda conn: revoke_key(conn, key_id))):
        click.echo(f"no active key {key_id}", err=True)
        sys.exit(1)
    click.echo(f"revoked {key_id}")
