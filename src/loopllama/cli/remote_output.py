"""How the remote commands print: tables, workflow and run details, JSON, and one-line errors
that say what to do next."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from loopllama.client import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from loopllama.client.types import ApiKey, Pending, Run, RunEvent, Step, UsageRow, Workflow

EXIT_COMPLETED = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_API_ERROR = 3
EXIT_WAITING_INPUT = 4


class RemoteError(click.ClickException):
    """An error answer from the API or no connection: one line on stderr, exit code 3."""

    exit_code = EXIT_API_ERROR


class SetupError(click.ClickException):
    """Missing or malformed settings (no API key, a bad --base-url): one line, exit code 2."""

    exit_code = EXIT_USAGE


# --- errors -----------------------------------------------------------------------------------


def explain(exc: APIError, base_url: str, ids: dict[str, Any]) -> str:
    """One line: what went wrong and what to do about it."""
    workflow_id = ids.get("workflow_id") or "WORKFLOW_ID"
    run_id = ids.get("run_id") or "RUN_ID"
    if isinstance(exc, APITimeoutError):
        return f"LoopLlama at {base_url} did not answer in time; check the server, then retry."
    if isinstance(exc, APIConnectionError):
        return (
            f"cannot reach LoopLlama at {base_url}; start it with `loopllama serve`, or point "
            "LOOPLLAMA_BASE_URL (or --base-url) at your server."
        )
    if isinstance(exc, APIResponseValidationError):
        return f"unexpected answer from {base_url}; is it a LoopLlama server? ({exc.message})"
    if not isinstance(exc, APIStatusError):
        return exc.message
    said = f"{exc.message} (HTTP {exc.status_code})"
    if isinstance(exc, AuthenticationError):
        todo = (
            "set LOOPLLAMA_API_KEY (or --api-key) to a valid key; a server admin creates one "
            "with `loopllama keys create --account NAME`."
        )
    elif isinstance(exc, PermissionDeniedError):
        todo = (
            "this key's scope or workflow limit does not allow it; use a key that does "
            "(`loopllama keys list` with an admin key shows each key's scope)."
        )
    elif isinstance(exc, NotFoundError):
        todo = "check the id: `loopllama workflows list` and `loopllama runs list WORKFLOW_ID`."
    elif isinstance(exc, ConflictError) and "paused" in exc.message.lower():
        todo = f"reactivate it with `loopllama workflows activate {workflow_id}`, then retry."
    elif isinstance(exc, ConflictError):
        todo = f"see where the run stands with `loopllama runs show {run_id}`."
    elif isinstance(exc, BadRequestError):
        todo = "fix the request and retry."
    elif isinstance(exc, RateLimitError):
        wait = f"in {exc.retry_after:g}s" if exc.retry_after is not None else "in a moment"
        todo = f"too many requests; retry {wait}."
    elif isinstance(exc, InternalServerError):
        todo = "the server failed (its log has the details); retry in a moment."
    else:
        todo = "see the server's log."
    return f"{said}; {todo}"


# --- JSON -------------------------------------------------------------------------------------


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# --- small formatters -------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes}m{secs:02d}s"


def tokens(tokens_in: int, tokens_out: int) -> str:
    return f"{tokens_in} in / {tokens_out} out tokens"


def clip(text: str | None, width: int) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# --- keys -------------------------------------------------------------------------------------


def key_state(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "active" if key.is_active else "expired"


def keys_table(keys: Sequence[ApiKey], accounts: Sequence[str] | None = None) -> str:
    """One line a key; with `accounts` (the server's own list), an ACCOUNT column too."""
    headers = [
        "ID",
        "HINT",
        "SCOPE",
        "WORKFLOWS",
        "EXPIRES",
        "LAST USED",
        "RATE LIMIT",
        "STATE",
        "LABEL",
    ]
    rows = [
        [
            k.id,
            k.hint,
            k.scope,
            ",".join(k.workflow_ids) if k.workflow_ids is not None else "all",
            when(k.expires_at) if k.expires_at else "never",
            when(k.last_used_at) if k.last_used_at else "never",
            k.extra.get("rate_limit") or "default",  # the server's own list only
            key_state(k),
            clip(k.label, 30),
        ]
        for k in keys
    ]
    if accounts is not None:
        headers.insert(2, "ACCOUNT")
        for row, account in zip(rows, accounts, strict=True):
            row.insert(2, account)
    return table(headers, rows)


# --- workflows --------------------------------------------------------------------------------


def workflows_table(workflows: Sequence[Workflow]) -> str:
    rows = [
        [w.id, clip(w.name, 40), w.status, w.model or "-", str(len(w.crew)), when(w.updated_at)]
        for w in workflows
    ]
    return table(["ID", "NAME", "STATUS", "MODEL", "AGENTS", "UPDATED"], rows)


def workflow_details(w: Workflow) -> str:
    lines = [
        f"{w.name}  ({w.id})",
        f"  status:       {w.status}",
        f"  model:        {w.model or '-'}",
    ]
    if w.description:
        lines.append(f"  description:  {w.description}")
    lines.append(f"  created:      {when(w.created_at)}")
    if w.updated_at:
        lines.append(f"  updated:      {when(w.updated_at)}")
    hitl = w.human_in_the_loop
    if hitl and (hitl.ask_questions or hitl.approve_tools):
        parts = ["agents may ask questions"] if hitl.ask_questions else []
        if hitl.approve_tools:
            parts.append("approval needed for " + ", ".join(hitl.approve_tools))
        lines.append(f"  human in the loop: {'; '.join(parts)}")
    lines.append("  crew:")
    for n, agent in enumerate(w.crew, 1):
        model = f"  [{agent.model}]" if agent.model else ""
        tools = f"  tools: {', '.join(agent.tools)}" if agent.tools else ""
        lines.append(f"    {n}. {agent.role}{model}{tools}")
        lines.append(f"       {clip(agent.system_prompt, 90)}")
    if w.tools:
        lines.append("  tools:")
        for tool in w.tools:
            lines.append(f"    {tool.name} -> {tool.url}  {clip(tool.description, 60)}".rstrip())
    return "\n".join(lines)


# --- runs -------------------------------------------------------------------------------------


def dollars(value: float | None) -> str:
    """`$0.0123`; `-` when the price is unknown. Four decimals: a model call costs cents."""
    return "-" if value is None else f"${value:,.4f}"


def usage_table(rows: Sequence[UsageRow]) -> str:
    lines = [
        [
            r.date,
            r.workflow_id,
            r.model,
            str(r.runs),
            f"{r.tokens_in:,}",
            f"{r.tokens_out:,}",
            dollars(r.cost_usd),
        ]
        for r in rows
    ]
    known = [r.cost_usd for r in rows if r.cost_usd is not None]
    total = dollars(sum(known)) if known else "-"
    if len(known) < len(rows) and known:
        total += " (prices unknown for some models)"
    lines.append(
        [
            "TOTAL",
            "",
            "",
            "",
            f"{sum(r.tokens_in for r in rows):,}",
            f"{sum(r.tokens_out for r in rows):,}",
            total,
        ]
    )
    headers = ["DATE", "WORKFLOW", "MODEL", "RUNS", "TOKENS IN", "TOKENS OUT", "COST"]
    return table(headers, lines)


def runs_table(runs: Sequence[Run]) -> str:
    rows = [
        [
            r.id,
            r.status,
            str(r.total_steps),
            f"{r.tokens_in}/{r.tokens_out}",
            when(r.created_at),
            clip(r.input, 40),
        ]
        for r in runs
    ]
    return table(["ID", "STATUS", "STEPS", "TOKENS IN/OUT", "CREATED", "INPUT"], rows)


def event_summary(event: RunEvent) -> str:
    """What an event says, in a few words."""
    data = event.data
    if event.type.startswith("step."):
        step = event.step
        assert step is not None
        detail = f"{step_label(step)}"
        if event.type == "step.failed":
            detail += f": {step.error}"
        elif event.type == "step.completed":
            detail += f" · {tokens(step.tokens_in, step.tokens_out)}"
        return detail
    if event.type == "tool_call.updated":
        call = event.tool_call
        return f"{call.name} {call.status} (step {_int(data.get('order')) + 1})" if call else ""
    if event.type == "run.resumed":
        return str(data.get("action", ""))
    run = event.run
    if run is None:
        return ""
    if event.type == "run.waiting_input" and run.pending is not None:
        return clip(run.pending.prompt, 60)
    if event.type == "run.failed":
        return clip(run.error or "", 80)
    return run.status


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def events_table(events: Sequence[RunEvent]) -> str:
    rows = [[str(e.id), when(e.created_at), e.type, event_summary(e)] for e in events]
    return table(["ID", "AT", "TYPE", "DETAIL"], rows)


def step_label(step: Step) -> str:
    return f"{step.role} ({step.model})" if step.model else step.role


def step_started(step: Step) -> str:
    return f"▸ {step_label(step)} started"


def step_finished(step: Step) -> str:
    took = seconds(step.duration)
    if step.error:
        return f"✗ {step_label(step)} failed after {took}: {step.error}"
    return f"✓ {step_label(step)} finished in {took} · {tokens(step.tokens_in, step.tokens_out)}"


def step_is_finished(step: Step) -> bool:
    return step.finished_at is not None or step.error is not None


def run_summary(run: Run) -> str:
    steps = f"{run.total_steps} step{'s' if run.total_steps != 1 else ''}"
    took = f" in {seconds(run.duration)}" if run.duration is not None else ""
    usage = tokens(run.tokens_in, run.tokens_out)
    if run.cost_usd is not None:  # unknown prices: nothing rather than a misleading $0
        usage += f" · {dollars(run.cost_usd)}"
    if run.status == "failed":
        after = f" after {seconds(run.duration)}" if run.duration is not None else ""
        return f"✗ Run {run.id} failed{after}: {run.error or 'no error given'}"
    return f"✓ Run {run.id} {run.status}{took} · {steps} · {usage}"


def pending_lines(run: Run) -> list[str]:
    """What the paused run needs, for a person."""
    pending = run.pending or Pending(kind="")
    who = paused_agent(run)
    if pending.is_question:
        return [f"? {who} asks: {pending.prompt}"]
    if pending.is_approval:
        lines = [f"! {who} wants to run {pending.tool}: {pending.prompt}"]
        if pending.tool_input is not None:
            shown = json.dumps(pending.tool_input, indent=2, ensure_ascii=False)
            lines += ["  " + line for line in shown.splitlines()[:40]]
        return lines
    return [f"? {who} waits for input ({pending.kind or 'unknown kind'}): {pending.prompt}"]


def paused_agent(run: Run) -> str:
    unfinished = [s for s in run.steps or [] if not step_is_finished(s)]
    return unfinished[-1].role if unfinished else "the agent"


def run_details(run: Run, *, step_outputs: bool = True) -> str:
    """The run for a terminal; with `step_outputs`, what each agent wrote under its step (the
    last agent's answer once, as the run's output at the end)."""
    lines = [f"Run {run.id}  (workflow {run.workflow_id}): {run.status}"]
    lines.append(f"  input:    {clip(run.input, 90)}")
    lines.append(f"  created:  {when(run.created_at)}")
    if run.started_at:
        lines.append(f"  started:  {when(run.started_at)}")
    if run.finished_at:
        lines.append(f"  finished: {when(run.finished_at)}  ({seconds(run.duration)})")
    cost = f" · {dollars(run.cost_usd)}" if run.cost_usd is not None else ""
    lines.append(f"  steps:    {run.total_steps} · {tokens(run.tokens_in, run.tokens_out)}{cost}")
    for step in run.steps or []:
        state = "running"
        if step.error:
            state = f"failed: {step.error}"
        elif step.finished_at:
            state = f"{seconds(step.duration)} · {tokens(step.tokens_in, step.tokens_out)}"
        lines.append(f"    {step.order + 1}. {step_label(step)}  {state}")
        for call in step.tool_calls:
            lines.append(f"       tool {call.name}: {call.status}")
        is_final = run.output is not None and step.order + 1 == run.total_steps
        if step_outputs and step.output and not is_final:
            lines += ["       " + line for line in step.output.strip().splitlines()]
    if run.is_paused:
        lines.append("  waiting for you:")
        lines += ["    " + line for line in pending_lines(run)]
        lines.append(f"    answer with `loopllama runs respond {run.id}`")
    if run.error:
        lines.append(f"  error:    {run.error}")
    if run.output is not None:
        lines += ["", run.output]
    return "\n".join(lines)
