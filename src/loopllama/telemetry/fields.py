"""Contextual log fields (`run_id`, `step`, `account_id`): set where the work happens, read by
the log formatter (telemetry/logs.py) on every record emitted inside that work.

One context variable holds a small dict. `scope(**fields)` opens a nested scope (the request
middleware opens an empty one per request, the runner one per run pass and one per step);
`annotate(**fields)` writes into the innermost scope in place, so a value learnt deep inside a
request (the caller's account, resolved by a dependency) is also seen by the lines the
middleware writes after the route returns.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("loopllama_log_fields", default=None)


def current() -> dict[str, Any]:
    """The fields in force here (do not mutate)."""
    return _fields.get() or {}


def scope(**fields: Any) -> _Scope:
    """`with scope(**fields):` the block's lines carry these fields too."""
    return _Scope(fields)


class _Scope:
    # Not a generator-based context manager: every request holds one for as long as it runs,
    # so a thousand open event streams hold a thousand (a generator and its frame each).
    __slots__ = ("_new", "_token")

    def __init__(self, new: dict[str, Any]) -> None:
        self._new: dict[str, Any] | None = new
        self._token: Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> None:
        assert self._new is not None, "a scope is entered once"
        self._token = _fields.set({**current(), **self._new})
        self._new = None

    def __exit__(self, *_: object) -> None:
        assert self._token is not None
        _fields.reset(self._token)


def annotate(**fields: Any) -> None:
    """Add fields to the innermost scope (or open one for the rest of this context)."""
    mine = _fields.get()
    if mine is None:
        _fields.set(dict(fields))
    else:
        mine.update(fields)
