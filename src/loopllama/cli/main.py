"""Entry point of the `loopllama` command; subcommands live in small modules beside it.

Server commands import the server lazily, so the remote commands work with only
`pip install loopllama` (httpx and click).
"""

from __future__ import annotations

import click

from loopllama.cli import remote, server
from loopllama.cli.quickstart import quickstart


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loopllama")
def cli() -> None:
    """LoopLlama: multi-agent LLM workflows behind an HTTP API."""


server.register(cli)
cli.add_command(quickstart)
remote.register(cli)
