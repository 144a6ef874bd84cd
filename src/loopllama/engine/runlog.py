"""Operator log lines: one INFO line on logger `loopllama.runs` per run state change.

    run=r1 status=completed workflow=w1 step=2/writer duration=4.12s tokens_in=161 tokens_out=99

`engine/transitions.py` calls `changed()` where it changes a run's status, and `progress()` where
a step starts or a model call adds tokens. What a line carries comes from the transition itself
plus what this process saw of the run since it claimed it (workflow, start, step, token totals),
so logging costs no query; a line from a process that never saw the run (an API process taking
a respond, say) names what it knows. Lines are written when the change is made inside its
transaction, which in the rare case of a lost ownership or a failed commit does not persist.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loopllama.ids import utcnow

logger = logging.getLogger("loopllama.runs")

_MAX_TRACKED = 10_000  # runs remembered per process; the oldest are forgotten first


@dataclass(slots=True)
class _Seen:
    workflow_id: str | None = None
    started_at: datetime | None = None
    step: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0


_runs: OrderedDict[str, _Seen] = OrderedDict()


def _seen(run_id: str) -> _Seen:
    seen = _runs.get(run_id)
    if seen is None:
        seen = _runs[run_id] = _Seen()
        if len(_runs) > _MAX_TRACKED:
            _runs.popitem(last=False)
    return seen


def changed(run: str | dict[str, Any], status: str, **detail: Any) -> None:
    """Log a status change. `run` is the run id, or a run row that fills in what it has."""
    if isinstance(run, dict):
        run_id, seen = run["id"], _seen(run["id"])
        seen.workflow_id = run.get("workflow_id") or seen.workflow_id
        seen.started_at = run.get("started_at") or seen.started_at
        seen.tokens_in = max(seen.tokens_in, run.get("tokens_in") or 0)
        seen.tokens_out = max(seen.tokens_out, run.get("tokens_out") or 0)
    else:
        run_id, seen = run, _seen(run)
    if status in ("completed", "failed"):
        _runs.pop(run_id, None)
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {"run": run_id, "status": status, "workflow": seen.workflow_id}
    fields["step"] = detail.pop("step", None) or seen.step
    if seen.started_at is not None and status != "queued":
        started = seen.started_at
        if started.tzinfo is None:  # SQLite returns naive UTC
            started = started.replace(tzinfo=utcnow().tzinfo)
        fields["duration"] = f"{(utcnow() - started).total_seconds():.2f}s"
    if seen.tokens_in or seen.tokens_out:
        fields["tokens_in"], fields["tokens_out"] = seen.tokens_in, seen.tokens_out
    fields.update(detail)
    logger.info(" ".join(_pair(k, v) for k, v in fields.items() if v is not None))


def progress(
    run_id: str, *, step: tuple[int, str] | None = None, tokens_in: int = 0, tokens_out: int = 0
) -> None:
    """Note a step start (0-based order, role) or a model call's tokens; logs nothing at INFO."""
    seen = _seen(run_id)
    if step is not None:
        seen.step = f"{step[0] + 1}/{step[1]}"
        logger.debug("run=%s step=%s started", run_id, seen.step)
    seen.tokens_in += tokens_in
    seen.tokens_out += tokens_out


def _pair(key: str, value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
    return f"{key}={text}"
