"""Run control and workflow versions from the terminal: `runs cancel | retry | fork` and
`workflows versions | restore | lock | unlock` (the same exit codes as remote.py)."""

from __future__ import annotations

import click

from loopllama.cli import remote_output as out
from loopllama.client import ConflictError, LoopLlama
from loopllama.client.types import Run, WorkflowVersion


def register(runs: click.Group, workflows: click.Group) -> None:
    from loopllama.cli.remote import json_option, with_client

    def _new_run(run: Run, as_json: bool, what: str) -> None:
        if as_json:
            out.echo_json(run.to_dict())
            return
        click.echo(run.id)
        source = run.forked_from or {}
        click.echo(
            f"{what} of run {source.get('run_id')} from step {source.get('from_step')}: "
            f"run {run.id} is {run.status}; follow it with `loopllama runs follow {run.id}`.",
            err=True,
        )

    @runs.command("cancel")
    @click.argument("run_id")
    @json_option
    @with_client
    def runs_cancel(client: LoopLlama, run_id: str, as_json: bool) -> None:
        """Cancel a queued, running or paused run (its model call in flight is aborted)."""
        run = client.runs.cancel(run_id)
        if as_json:
            out.echo_json(run.to_dict())
        else:
            click.echo(f"Run {run.id} is {run.status}.")

    @runs.command("retry")
    @click.argument("run_id")
    @json_option
    @with_client
    def runs_retry(client: LoopLlama, run_id: str, as_json: bool) -> None:
        """Retry a failed or cancelled run as a new run that reuses its completed steps."""
        _new_run(client.runs.retry(run_id), as_json, "Retry")

    @runs.command("fork")
    @click.argument("run_id")
    @click.option(
        "--from-step",
        type=click.IntRange(min=0),
        required=True,
        help="First step to execute again (0-based); the steps before it are reused.",
    )
    @click.option("--input", "new_input", metavar="TEXT", help="A new input for the fork.")
    @click.option(
        "--current", is_flag=True, help="Use the workflow as it is now, not the run's snapshot."
    )
    @json_option
    @with_client
    def runs_fork(
        client: LoopLlama,
        run_id: str,
        from_step: int,
        new_input: str | None,
        current: bool,
        as_json: bool,
    ) -> None:
        """Fork a run from a step: a new run reusing the steps before it."""
        run = client.runs.fork(
            run_id, from_step=from_step, input=new_input, use_current_workflow=current
        )
        _new_run(run, as_json, "Fork")

    @workflows.command("versions")
    @click.argument("workflow_id")
    @json_option
    @with_client
    def workflows_versions(client: LoopLlama, workflow_id: str, as_json: bool) -> None:
        """List a workflow's versions, newest first."""
        versions = client.workflows.versions(workflow_id)
        if as_json:
            out.echo_json([v.to_dict() for v in versions])
        else:
            click.echo(_versions_table(versions))

    @workflows.command("restore")
    @click.argument("workflow_id")
    @click.argument("version", type=click.IntRange(min=1))
    @json_option
    @with_client
    def workflows_restore(client: LoopLlama, workflow_id: str, version: int, as_json: bool) -> None:
        """Make VERSION's definition current again (recorded as a new version)."""
        workflow = client.workflows.restore(workflow_id, version)
        if as_json:
            out.echo_json(workflow.to_dict())
        else:
            click.echo(
                f"Restored version {version} of {workflow.id} as version {workflow.version}."
            )

    for name, locked in (("lock", True), ("unlock", False)):

        @workflows.command(name)
        @click.argument("workflow_id")
        @json_option
        @with_client
        def toggle(client: LoopLlama, workflow_id: str, as_json: bool, locked=locked) -> None:
            method = client.workflows.lock if locked else client.workflows.unlock
            workflow = method(workflow_id)
            if as_json:
                out.echo_json(workflow.to_dict())
            else:
                state = "locked" if workflow.locked else "unlocked"
                click.echo(f"Workflow {workflow.id} is {state}.")

        toggle.help = (
            "Lock a workflow: changes, restores and deletes are refused until unlocked."
            if locked
            else "Unlock a locked workflow."
        )


def _versions_table(versions: list[WorkflowVersion]) -> str:
    rows = [
        [
            str(v.version),
            v.model or "-",
            str(len(v.crew)),
            ", ".join(a.role for a in v.crew),
            str(v.max_run_seconds or "-"),
            out.when(v.created_at),
        ]
        for v in versions
    ]
    return out.table(["VERSION", "MODEL", "AGENTS", "CREW", "MAX SECONDS", "CREATED"], rows)


def offer_cancel(client: LoopLlama, run_id: str) -> bool:
    """After Ctrl-C while following a run: ask whether to cancel it. True if cancelled."""
    try:
        wanted = click.confirm(f"\nCancel run {run_id}?", default=False, err=True)
    except (click.Abort, KeyboardInterrupt):  # a second Ctrl-C: leave it running
        return False
    if not wanted:
        return False
    try:
        run = client.runs.cancel(run_id)
    except ConflictError:
        click.echo(f"Run {run_id} had already finished.", err=True)
        return False
    click.echo(f"Run {run.id} is {run.status}.", err=True)
    return True
