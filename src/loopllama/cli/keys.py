"""`loopllama keys`: create, list and revoke API keys, in the server's database or over the API.

Where a command acts:
- `keys create --account NAME`: the server's database (an operator with a shell; the account
  is created if new).
- otherwise, when both an API key (--api-key / LOOPLLAMA_API_KEY) and a base URL (--base-url /
  LOOPLLAMA_BASE_URL) are given: the keys API, as that (admin) key, for its own account.
- otherwise `keys list` and `keys revoke` use the server's database (every account).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from loopllama.cli import remote_output as out
from loopllama.client import APIError, LoopLlama, LoopLlamaError
from loopllama.client.types import ApiKey

SCOPE_CHOICES = ("read", "run", "admin")  # permissions.SCOPES, without importing the server
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Duration(click.ParamType):
    """`30d`, `12h`, `90m`, `2w`: a lifetime from now."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", str(value))
        if not match or int(match[1]) == 0:
            self.fail(f"{value!r} is not a duration like 30d, 12h, 90m or 2w", param, ctx)
        return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _remote_options(command: Any) -> Any:
    command = click.option(
        "--base-url",
        envvar="LOOPLLAMA_BASE_URL",
        show_envvar=True,
        metavar="URL",
        help="With an API key: act over this server's keys API.",
    )(command)
    return click.option(
        "--api-key",
        envvar="LOOPLLAMA_API_KEY",
        show_envvar=True,
        metavar="KEY",
        help="With a base URL: an admin key to act with, for its own account.",
    )(command)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (locally, or over the API with an admin key)."""


@keys.command("create")
@click.option("--account", default=None, help="Account name, in the server's database.")
@click.option("--label", default=None, help="A note to recognise the key by.")
@click.option(
    "--scope",
    type=click.Choice(SCOPE_CHOICES),
    default=None,
    help="read: every GET; run: read + trigger and answer runs; admin: everything. "
    "[default: admin]",
)
@click.option(
    "--workflow",
    "workflow_ids",
    multiple=True,
    metavar="ID",
    help="Limit the key to this workflow (repeat for several).",
)
@click.option("--expires-in", type=Duration(), default=None, help="e.g. 30d, 12h, 90m, 2w.")
@click.option(
    "--rate-limit",
    default=None,
    help="The key's own request limit, N/second|minute|hour (default: LOOPLLAMA_RATE_LIMIT); "
    "with --account only.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the key object as JSON.")
@_remote_options
@click.pass_context
def keys_create(
    ctx: click.Context,
    account: str | None,
    label: str | None,
    scope: str | None,
    workflow_ids: tuple[str, ...],
    expires_in: timedelta | None,
    rate_limit: str | None,
    as_json: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """Create an API key; it is printed once, on the last line.

    With --account, in the server's database (the account is created if new). Without it,
    over the API as an admin key (--api-key and --base-url, or their variables), for that
    key's account; the new key can be no wider than the admin key.
    """
    expires_at = datetime.now(UTC) + expires_in if expires_in else None
    if rate_limit is not None:
        from loopllama.rates import parse_rate

        if account is None:
            raise click.UsageError("--rate-limit is set in the server's database: add --account")
        try:
            rate_limit = str(parse_rate(rate_limit))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--rate-limit") from None
    if account is not None:
        key = _create_local(account, label, scope or "admin", workflow_ids, expires_at, rate_limit)
    elif api_key and base_url:
        with _remote(ctx, api_key, base_url) as client:
            key = client.keys.create(
                label=label,
                scope=scope or "admin",
                workflow_ids=list(workflow_ids) if workflow_ids else None,
                expires_at=expires_at,
            )
    else:
        raise click.UsageError(
            "give --account NAME (the server's database), or an admin API key and a base URL "
            "(--api-key/LOOPLLAMA_API_KEY and --base-url/LOOPLLAMA_BASE_URL) to use the API."
        )
    if as_json:
        out.echo_json(key.to_dict())
        return
    owner = f" for account {account}" if account else ""
    click.echo(
        f"Created key {key.id}{owner} ({_grant_words(key)}). Store it now: it is shown once."
    )
    click.echo(key.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@_remote_options
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool, api_key: str | None, base_url: str | None) -> None:
    """List keys with their scope, workflows, expiry and last use (never the keys).

    Over the API (an API key and a base URL given): the keys of that key's account. Otherwise
    every key in the server's database.
    """
    accounts: list[str] | None = None
    if api_key and base_url:
        with _remote(ctx, api_key, base_url) as client:
            items = client.keys.list()
    else:
        items, accounts = _list_local()
    if as_json:
        rows = [k.to_dict() for k in items]
        for row, account in zip(rows, accounts or [], strict=False):
            row["account"] = account
        out.echo_json(rows)
    elif not items:
        click.echo("no keys")
    else:
        click.echo(out.keys_table(items, accounts))


@keys.command("revoke")
@click.argument("key_id")
@_remote_options
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, api_key: str | None, base_url: str | None) -> None:
    """Revoke a key: requests with it fail at once."""
    if api_key and base_url:
        with _remote(ctx, api_key, base_url) as client:
            client.keys.revoke(key_id)
    elif not _revoke_local(key_id):
        click.echo(f"no active key {key_id}", err=True)
        sys.exit(1)
    click.echo(f"revoked {key_id}")


def _grant_words(key: ApiKey) -> str:
    workflows = ", ".join(key.workflow_ids) if key.workflow_ids else "all workflows"
    expiry = f"expires {out.when(key.expires_at)}" if key.expires_at else "never expires"
    return f"scope {key.scope}, {workflows}, {expiry}"


# --- over the API -----------------------------------------------------------------------------


@contextlib.contextmanager
def _remote(ctx: click.Context, api_key: str, base_url: str) -> Iterator[LoopLlama]:
    obj = ctx.find_object(dict) or {}
    try:
        client = LoopLlama(api_key=api_key, base_url=base_url, **obj.get("client_options", {}))
    except (LoopLlamaError, ValueError) as exc:  # a malformed --base-url
        raise out.SetupError(str(exc)) from exc
    try:
        with client:
            yield client
    except APIError as exc:
        raise out.RemoteError(out.explain(exc, base_url, {})) from exc


# --- in the server's database -----------------------------------------------------------------


def _create_local(
    account: str,
    label: str | None,
    scope: str,
    workflow_ids: tuple[str, ...],
    expires_at: datetime | None,
    rate_limit: str | None = None,
) -> ApiKey:
    from loopllama.cli.server import with_db
    from loopllama.permissions import Grant
    from loopllama.schemas.keys import key_public
    from loopllama.store.keys import account_id_of, insert_key
    from loopllama.store.workflows import existing_workflow_ids

    grant = Grant(scope, frozenset(workflow_ids) if workflow_ids else None, expires_at)

    async def create(conn: Any) -> ApiKey:
        account_id = await account_id_of(conn, account, create=not workflow_ids)
        if workflow_ids:
            known = (
                await existing_workflow_ids(conn, account_id, workflow_ids) if account_id else set()
            )
            missing = [wid for wid in workflow_ids if wid not in known]
            if missing:
                raise click.UsageError(f"account {account} has no workflow {missing[0]}")
        row, key = await insert_key(conn, account_id, label, grant, rate_limit=rate_limit)
        return ApiKey.from_dict({**key_public(row), "key": key})

    return asyncio.run(with_db(create))


def _list_local() -> tuple[list[ApiKey], list[str]]:
    from loopllama.cli.server import with_db
    from loopllama.schemas.keys import key_public
    from loopllama.store.keys import list_keys

    rows = asyncio.run(with_db(list_keys))
    keys = [ApiKey.from_dict({**key_public(row), "rate_limit": row["rate_limit"]}) for row in rows]
    return keys, [row["account"] for row in rows]


def _revoke_local(key_id: str) -> bool:
    from loopllama.cli.server import with_db
    from loopllama.store.keys import revoke_key

    return asyncio.run(with_db(lambda conn: revoke_key(conn, key_id)))
