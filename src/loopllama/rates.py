"""Rate strings (`50/second`, `5/minute`, `1000/hour`): one parser for the settings, the CLI
and the API's limiter, so every place accepts and refuses the same values."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*(second|minute|hour)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    amount: int
    unit: str

    @property
    def seconds(self) -> int:
        return UNITS[self.unit]

    def __str__(self) -> str:
        return f"{self.amount}/{self.unit}"


def parse_rate(text: str) -> Rate:
    """`Rate` from `N/second|minute|hour` (N >= 1), else ValueError saying what is expected."""
    match = _RATE.match(text or "")
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"Invalid rate limit {text!r}: expected N/second, N/minute or N/hour with N >= 1"
        )
    return Rate(int(match.group(1)), match.group(2))
