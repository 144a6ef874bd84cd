"""Contextual log fields (`run_id`, `step`, `account_id`): set where the work happens, read by
the log formatter (telemetry/logs.py) on every record emitted inside that work.

One context variable holds a small dict. `scope(**fields)` opens a nested scope (the request
middleware opens an empty one per request, the runner one per run pass and one per step);
`annotate(**fields)` writes into the innermost scope in place, so a value learnt deep inside a
request (the caller's account, resolved by a dependency) is also seen by the lines the
middleware writes after the route returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("loopllama_log_fields", default=None)


def current() -> dict[str, Any]:
    """The fields in force here (do not mutate)."""
    return _fields.get() or {}


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    token = _fields.set({**current(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def annotate(**fields: Any) -> None:
    """Add fields to the innermost scope (or open one for the rest of this context)."""
    mine = _fields.get()
    if mine is None:
        _fields.set(dict(fields))
    else:
        mine.update(fields)
