"""Remote commands over the SDK: workflows, run, runs (filled in by the SDK/CLI work)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Attach the remote commands to the root group."""
