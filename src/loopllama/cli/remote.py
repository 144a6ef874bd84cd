"""Remote commands over the SDK: `workflows ...`, `run`, `runs ...` (and `webhooks ...`, in
remote_webhooks.py).

Exit codes: 0 the run completed (or the command succeeded), 1 the run failed, 2 usage error,
3 an error answer from the API or no connection, 4 the run waits for input that was not given
here (`--json`, or no answer at the prompt). Errors are one line on stderr.

Tests reach the in-process app by passing `obj={"client_options": {"transport": ...}}` to
click's runner: those options go to every `LoopLlama` these commands build.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from loopllama.cli import remote_output as out
from loopllama.cli._term import Spinner, interactive_output
from loopllama.cli.remote_follow import Follower
from loopllama.client import APIError, LoopLlama, LoopLlamaError
from loopllama.client._client import DEFAULT_BASE_URL
from loopllama.client.types import Run

_WORKFLOW_FIELDS = ("name", "description", "model", "crew", "human_in_the_loop", "tools")


def register(cli: click.Group) -> None:
    """Attach the remote commands to the root group."""
    from loopllama.cli import remote_control

    remote_control.register(runs, workflows)
    cli.add_command(workflows)
    cli.add_command(run_command)
    cli.add_command(runs)
    from loopllama.cli.remote_webhooks import webhooks  # it builds on this module's options

    cli.add_command(webhooks)
    cli.add_command(usage_command)


# --- plumbing: the client, errors, common options ---------------------------------------------


def with_client(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --api-key / --base-url, build the client, and turn API errors into exit code 3."""

    @click.option(
        "--base-url",
        envvar="LOOPLLAMA_BASE_URL",
        show_envvar=True,
        metavar="URL",
        help=f"The LoopLlama server [default: {DEFAULT_BASE_URL}].",
    )
    @click.option(
        "--api-key",
        envvar="LOOPLLAMA_API_KEY",
        show_envvar=True,
        metavar="KEY",
        help="Your ll_live_... API key.",
    )
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, api_key: str | None, base_url: str | None, **kwargs: Any):
        if not api_key:
            raise out.SetupError(
                "no API key: set LOOPLLAMA_API_KEY or pass --api-key (a server admin creates "
                "one with `loopllama keys create --account NAME`)."
            )
        obj = ctx.find_object(dict) or {}
        options = dict(obj.get("client_options", {}))
        base_url = base_url or DEFAULT_BASE_URL
        try:
            client = LoopLlama(api_key=api_key, base_url=base_url, **options)
        except (LoopLlamaError, ValueError) as exc:  # a malformed --base-url
            raise out.SetupError(str(exc)) from exc
        try:
            with client:
                return command(client, **kwargs)
        except APIError as exc:
            raise out.RemoteError(out.explain(exc, base_url, kwargs)) from exc

    return wrapper


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print machine-readable JSON; never prompt."
    )(command)


def interval_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--interval",
        type=click.FloatRange(min=0.01),
        default=1.0,
        show_default=True,
        help="Seconds between two looks at the run (a server without the event stream).",
    )(command)


def stream_text_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--stream-text/--no-stream-text",
        default=None,
        help="Show the agents' text on stderr as it is generated [default: on a terminal].",
    )(command)


def _say(line: str) -> None:
    click.echo(line, err=True)


def _load_definition(path: str) -> dict[str, Any]:
    """A workflow definition from a JSON or YAML file (`-` reads stdin)."""
    if path == "-":
        text, suffix = sys.stdin.read(), ""
    else:
        try:
            text, suffix = Path(path).read_text(encoding="utf-8"), Path(path).suffix.lower()
        except OSError as exc:
            message = f"cannot read {path}: {exc.strerror}"
            raise click.BadParameter(message, param_hint="-f") from exc
        except UnicodeDecodeError as exc:
            message = f"cannot read {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            raise click.BadParameter(message, param_hint="-f") from exc
    if suffix == ".json":
        data = _parse_json(text, path)
    elif suffix in (".yaml", ".yml"):
        data = _parse_yaml(text, path)
    else:
        try:
            data = json.loads(text)
        except ValueError:
            data = _parse_yaml(text, path)
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold one object (a mapping)", param_hint="-f")
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:  # YAML dates, binary, sets...: not JSON values
        raise click.BadParameter(
            f"{path} holds a value JSON cannot carry ({exc}); quote it as a string",
            param_hint="-f",
        ) from exc
    return data


def _parse_json(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not valid JSON: {exc}", param_hint="-f") from exc


def _parse_yaml(text: str, path: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise click.BadParameter(
            f"{path} is not JSON, and reading YAML needs PyYAML: `pip install pyyaml`, "
            "or write the workflow as JSON",
            param_hint="-f",
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path} is not valid YAML: {exc}", param_hint="-f") from exc


def _split_fields(body: dict[str, Any], known: tuple[str, ...]) -> tuple[dict, dict]:
    fields = {key: body[key] for key in known if key in body}
    extra = {key: value for key, value in body.items() if key not in known}
    return fields, extra


# --- workflows --------------------------------------------------------------------------------


@click.group()
def workflows() -> None:
    """List, show, create and manage workflows."""


@workflows.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=None,
    help="Show one page of at most this many (1-1000); default: every workflow.",
)
@click.option("--after", metavar="WORKFLOW_ID", default=None, help="Start after this workflow.")
@json_option
@with_client
def workflows_list(client: LoopLlama, limit: int | None, after: str | None, as_json: bool) -> None:
    """List your workflows, most recently updated first."""
    items = client.workflows.list(limit=limit, after=after)
    if as_json:
        out.echo_json([w.to_dict() for w in items])
    elif not items and after is None:
        _say("No workflows yet; create one with `loopllama workflows create -f workflow.yaml`.")
    elif items:
        click.echo(out.workflows_table(items))
    if items.has_more:
        _say(f"More workflows follow: --after {items[-1].id}")


@workflows.command("show")
@click.argument("workflow_id")
@json_option
@with_client
def workflows_show(client: LoopLlama, workflow_id: str, as_json: bool) -> None:
    """Show a workflow: its crew, model, tools and human-in-the-loop settings."""
    workflow = client.workflows.retrieve(workflow_id)
    if as_json:
        out.echo_json(workflow.to_dict())
    else:
        click.echo(out.workflow_details(workflow))


@workflows.command("create")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    metavar="FILE",
    help="The workflow as JSON, or YAML (needs PyYAML); - reads stdin.",
)
@json_option
@with_client
def workflows_create(client: LoopLlama, path: str, as_json: bool) -> None:
    """Create a workflow from a file with the API's fields: name, description, model, crew
    (role, systemPrompt, model, tools), human_in_the_loop, tools."""
    body = _load_definition(path)
    if not isinstance(body.get("name"), str):
        raise click.BadParameter(f"{path} needs a `name`", param_hint="-f")
    fields, extra = _split_fields(body, _WORKFLOW_FIELDS)
    workflow = client.workflows.create(**fields, extra_body=extra)
    if as_json:
        out.echo_json(workflow.to_dict())
    else:
        click.echo(f"Created workflow {workflow.id} ({workflow.name}).")
        _say(f'Run it with `loopllama run {workflow.id} "your input"`.')


@workflows.command("update")
@click.argument("workflow_id")
@click.option("-f", "--file", "path", required=True, metavar="FILE", help="Fields to change.")
@json_option
@with_client
def workflows_update(client: LoopLlama, workflow_id: str, path: str, as_json: bool) -> None:
    """Change the fields of a workflow given in a JSON or YAML file."""
    fields, extra = _split_fields(_load_definition(path), (*_WORKFLOW_FIELDS, "status"))
    workflow = client.workflows.update(workflow_id, **fields, extra_body=extra)
    if as_json:
        out.echo_json(workflow.to_dict())
    else:
        click.echo(f"Updated workflow {workflow.id} ({workflow.name}).")


@workflows.command("pause")
@click.argument("workflow_id")
@json_option
@with_client
def workflows_pause(client: LoopLlama, workflow_id: str, as_json: bool) -> None:
    """Pause a workflow: new runs are refused until it is activated again."""
    workflow = client.workflows.pause(workflow_id)
    if as_json:
        out.echo_json(workflow.to_dict())
    else:
        click.echo(f"Workflow {workflow.id} is paused.")


@workflows.command("activate")
@click.argument("workflow_id")
@json_option
@with_client
def workflows_activate(client: LoopLlama, workflow_id: str, as_json: bool) -> None:
    """Reactivate a paused workflow."""
    workflow = client.workflows.activate(workflow_id)
    if as_json:
        out.echo_json(workflow.to_dict())
    else:
        click.echo(f"Workflow {workflow.id} is active.")


@workflows.command("delete")
@click.argument("workflow_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@with_client
def workflows_delete(client: LoopLlama, workflow_id: str, yes: bool) -> None:
    """Delete a workflow (its runs stay retrievable by id)."""
    if not yes:
        workflow = client.workflows.retrieve(workflow_id)
        try:
            confirmed = click.confirm(f"Delete workflow {workflow.id} ({workflow.name})?", err=True)
        except click.Abort:
            confirmed = False
        if not confirmed:
            raise click.UsageError("not deleted; pass --yes to delete without a question.")
    client.workflows.delete(workflow_id)
    click.echo(f"Deleted workflow {workflow_id}.")


# --- run --------------------------------------------------------------------------------------


def _exit_code(run: Run) -> int:
    if run.status == "completed":
        return out.EXIT_COMPLETED
    if run.is_paused:
        return out.EXIT_WAITING_INPUT
    return out.EXIT_RUN_FAILED


def _follow(
    client: LoopLlama,
    run_id: str,
    *,
    as_json: bool,
    interval: float,
    stream_text: bool | None = None,
    offer_cancel: bool = False,
) -> int:
    """Follow a run to its end (prompting at pauses unless --json); print it; its exit code.
    `offer_cancel`: Ctrl-C asks whether to cancel the run (in a terminal, without --json)."""
    spinner = Spinner(enabled=not as_json and interactive_output())
    follower = Follower(
        client,
        interval=interval,
        prompt=not as_json,
        narrate=not as_json,
        spinner=spinner,
        live_text=interactive_output() if stream_text is None else stream_text,
    )
    try:
        final = follower.follow(run_id)
    except KeyboardInterrupt:
        spinner.clear()
        from loopllama.cli.remote_control import offer_cancel as ask

        if offer_cancel and not as_json and sys.stdin.isatty() and ask(client, run_id):
            return 130
        _say(f"\nStopped following; run {run_id} goes on: `loopllama runs show {run_id}`.")
        return 130
    finally:
        spinner.clear()
    if as_json:
        out.echo_json(final.to_dict())
    elif final.is_paused:
        _say(
            f"Run {final.id} is waiting for input; answer it later with "
            f"`loopllama runs respond {final.id}`."
        )
    else:
        _say(out.run_summary(final))
        if final.output is not None:
            click.echo(final.output)
    return _exit_code(final)


@click.command("run")
@click.argument("workflow_id")
@click.argument("input")
@click.option("--no-wait", is_flag=True, help="Print the run id and return at once.")
@json_option
@interval_option
@stream_text_option
@with_client
@click.pass_context
def run_command(
    ctx: click.Context,
    client: LoopLlama,
    workflow_id: str,
    input: str,
    no_wait: bool,
    as_json: bool,
    interval: float,
    stream_text: bool | None,
) -> None:
    """Trigger a run of WORKFLOW_ID on INPUT ("-" reads stdin) and follow it live.

    Prints a line as each agent starts and finishes (with its text as the model writes it,
    on a terminal), asks you in the terminal when the run pauses (answer a question, approve
    or reject an action), and prints the output at the end. Exit code 0: completed,
    1: failed, 4: left waiting for input.
    """
    if input == "-":
        input = sys.stdin.read().rstrip("\n")
    run = client.runs.create(workflow_id, input)
    if no_wait:
        if as_json:
            out.echo_json(run.to_dict())
        else:
            click.echo(run.id)
        return
    if not as_json:
        _say(f"Run {run.id} queued on workflow {workflow_id}.")
    ctx.exit(
        _follow(
            client,
            run.id,
            as_json=as_json,
            interval=interval,
            stream_text=stream_text,
            offer_cancel=True,
        )
    )


# --- runs -------------------------------------------------------------------------------------


@click.group()
def runs() -> None:
    """List, show, follow, answer, cancel, retry and fork runs."""


@runs.command("list")
@click.argument("workflow_id", required=False)
@click.option("--status", metavar="STATUS", help="Only runs in this status (e.g. failed).")
@click.option("--limit", type=click.IntRange(1, 100), help="How many (default 50).")
@click.option("--after", metavar="RUN_ID", help="The runs older than this one.")
@json_option
@with_client
def runs_list(
    client: LoopLlama,
    workflow_id: str | None,
    status: str | None,
    limit: int | None,
    after: str | None,
    as_json: bool,
) -> None:
    """List the newest runs of a workflow, or of every workflow without WORKFLOW_ID."""
    items = client.runs.list(workflow_id, status=status, limit=limit, after=after)
    if as_json:
        out.echo_json([r.to_dict() for r in items])
    elif not items:
        if workflow_id and not (status or after):
            _say(f'No runs yet; start one with `loopllama run {workflow_id} "your input"`.')
        else:
            _say("No runs.")
    else:
        click.echo(out.runs_table(items))
        if items.has_more:
            command = " ".join(["loopllama runs list", *filter(None, [workflow_id])])
            _say(f"More: `{command} --after {items[-1].id}`.")


@runs.command("show")
@click.argument("run_id")
@click.option(
    "--steps/--no-steps",
    default=True,
    show_default=True,
    help="Print what each agent wrote under its step.",
)
@json_option
@with_client
def runs_show(client: LoopLlama, run_id: str, steps: bool, as_json: bool) -> None:
    """Show a run: status, each step and its output, what it waits for, the final output."""
    run = client.runs.retrieve(run_id)
    if as_json:
        out.echo_json(run.to_dict())
    else:
        click.echo(out.run_details(run, step_outputs=steps))


@runs.command("follow")
@click.argument("run_id")
@json_option
@interval_option
@stream_text_option
@with_client
@click.pass_context
def runs_follow(
    ctx: click.Context,
    client: LoopLlama,
    run_id: str,
    as_json: bool,
    interval: float,
    stream_text: bool | None,
) -> None:
    """Follow a run live until it ends, answering its pauses in the terminal."""
    ctx.exit(_follow(client, run_id, as_json=as_json, interval=interval, stream_text=stream_text))


@runs.command("events")
@click.argument("run_id")
@click.option(
    "--after", type=click.IntRange(min=0), default=0, help="Only the events after this id."
)
@json_option
@with_client
def runs_events(client: LoopLlama, run_id: str, after: int, as_json: bool) -> None:
    """Print a run's event log: what happened, in order (one line per event)."""
    events = client.runs.events(run_id, after=after)
    if as_json:
        out.echo_json([e.to_dict() for e in events])
    elif not events:
        _say(f"No events after {after}.")
    else:
        click.echo(out.events_table(events))


@runs.command("respond")
@click.argument("run_id")
@click.option("--answer", "-a", metavar="TEXT", help="Answer the agent's question.")
@click.option("--approve", is_flag=True, help="Approve the pending action.")
@click.option("--reject", is_flag=True, help="Reject the pending action.")
@click.option("--reason", metavar="TEXT", help="With --reject: why (passed to the agent).")
@click.option("--follow", is_flag=True, help="Then follow the run live.")
@json_option
@interval_option
@with_client
@click.pass_context
def runs_respond(
    ctx: click.Context,
    client: LoopLlama,
    run_id: str,
    answer: str | None,
    approve: bool,
    reject: bool,
    reason: str | None,
    follow: bool,
    as_json: bool,
    interval: float,
) -> None:
    """Answer a paused run: --answer TEXT, --approve, or --reject [--reason TEXT].

    With none of them, shows what the run waits for and asks in the terminal.
    """
    chosen = [flag for flag, on in (("--answer", answer is not None), ("--approve", approve),
                                     ("--reject", reject)) if on]  # fmt: skip
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} exclude each other; give one.")
    if reason is not None and not reject:
        raise click.UsageError("--reason goes with --reject.")
    if answer is not None:
        kwargs: dict[str, Any] | None = {"action": "input", "input": answer}
    elif approve:
        kwargs = {"action": "approve"}
    elif reject:
        kwargs = {"action": "reject", "reason": reason}
    elif as_json:
        raise click.UsageError("--json never prompts: give --answer, --approve or --reject.")
    else:
        run = client.runs.retrieve(run_id)
        if not run.is_paused:
            raise out.RemoteError(
                f"run {run_id} is {run.status}, not waiting for input; nothing to answer."
            )
        follower = Follower(
            client, interval=interval, prompt=True, narrate=False, spinner=Spinner(False)
        )
        kwargs = follower.ask(run)
        if kwargs is None:
            ctx.exit(out.EXIT_WAITING_INPUT)
    result = client.runs.respond(run_id, **kwargs)
    if follow:
        ctx.exit(_follow(client, run_id, as_json=as_json, interval=interval))
    if as_json:
        out.echo_json(result.to_dict())
    else:
        click.echo(f"Answer sent; run {result.id} is {result.status}.")
        _say(f"Follow it with `loopllama runs follow {result.id}`.")


# --- usage ------------------------------------------------------------------------------------


@click.command("usage")
@click.option("--start", default=None, metavar="YYYY-MM-DD", help="First UTC day (included).")
@click.option(
    "--end", default=None, metavar="YYYY-MM-DD", help="Last UTC day (included); default today."
)
@json_option
@with_client
def usage_command(client: LoopLlama, start: str | None, end: str | None, as_json: bool) -> None:
    """Runs, tokens and cost per day, workflow and model (default: the last 30 days)."""
    rows = client.usage.retrieve(start=start, end=end)
    if as_json:
        out.echo_json([row.to_dict() for row in rows])
    elif not rows:
        _say("No usage in that period.")
    else:
        click.echo(out.usage_table(rows))
