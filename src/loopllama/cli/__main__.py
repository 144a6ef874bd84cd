"""`python -m loopllama.cli`: the same as the `loopllama` command."""

from loopllama.cli.main import cli

cli()
