"""Log setup of `serve` and `worker`: readable text (the default) or one JSON object per line.

`LOOPLLAMA_LOG_FORMAT=json` writes `time` (ISO 8601, UTC), `level`, `logger`, `message` and,
where they apply, `run_id`, `step`, `account_id` (telemetry/fields.py) and `trace_id` (when
traces are on), plus `exc_info` for an exception. Text lines carry the same fields as a
`[run_id=... step=...]` suffix.

Secrets: nothing logs a key on purpose; as a second line of defence every handler masks
anything shaped like a LoopLlama API key (`ll_live_` and its secret part) before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

from loopllama import telemetry
from loopllama.telemetry import fields

_CONTEXT = ("run_id", "step", "account_id", "trace_id")
_KEY = re.compile(r"ll_live_[A-Za-z0-9_\-]{8,}")


class ContextFilter(logging.Filter):
    """Copies the contextual fields onto each record, and masks key-shaped strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in fields.current().items():
            setattr(record, name, value)
        trace = telemetry.trace_id()
        if trace is not None:
            record.trace_id = trace
        if "ll_live_" in (message := record.getMessage()):
            record.msg, record.args = _KEY.sub("ll_live_[redacted]", message), None
        return True


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [f"{n}={getattr(record, n)}" for n in _CONTEXT if hasattr(record, n)]
        return f"{line} [{' '.join(context)}]" if context else line


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return _json_formatter()
    return _Text("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter  # only processes that log JSON load it

    class Json(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
            moment = datetime.fromtimestamp(record.created, UTC)
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return Json(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        # Only the contextual fields travel as extras: drop the rest of LogRecord.
        reserved_attrs=[
            *(a for a in logging.LogRecord("", 0, "", 0, "", (), None).__dict__),
            "message",
            "asctime",
            "taskName",
            "color_message",  # uvicorn's copy of the message with terminal colours
        ],
    )


def configure_logging(level: str, fmt: str = "text") -> logging.Handler:
    """One handler on the root logger, on stderr; uvicorn's loggers write through it too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpx2"):  # one INFO line per model call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def uvicorn_log_config() -> dict:
    """uvicorn's loggers propagate to the root handler instead of installing their own."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
