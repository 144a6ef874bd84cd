"""Every log line the test suite produces, checked for the secrets the tests use.

A handler on the root logger (at INFO, for the whole session) keeps each formatted line with
its traceback; at the end of the session no line may hold a full API key (`ll_live_` and its
43-character secret; the 4-character hint is fine) or any provider key or tool header secret
that a test hands to the server. A test that introduces a new secret adds it to SECRETS.
"""

from __future__ import annotations

import logging
import re
import threading

API_KEY = re.compile(r"ll_live_[A-Za-z0-9_\-]{40,}")
SECRETS = (
    "sk-ant-test",  # the fake Anthropic key (tests/helpers.py, tests/scaleout)
    "crm-secret-123",  # tool headers (tests/hitl)
    "sk-very-secret-value",  # tests/tools/test_custom.py
    "secret-token",  # tests/client
    "metrics-tool-secret",  # tests/telemetry
    "trace-tool-secret",
    "across-tool-secret",
)


class SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.leaks: list[str] = []
        self.lines = 0
        self._leak_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is the logging call's bug
            return
        self.lines += 1
        if API_KEY.search(line) or any(secret in line for secret in SECRETS):
            with self._leak_lock:
                self.leaks.append(line[:500])

    def install(self) -> int:
        root = logging.getLogger()
        root.addHandler(self)
        level = root.level
        root.setLevel(min(level, logging.INFO) if level else logging.INFO)
        return level

    def remove(self, level: int) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(level)
