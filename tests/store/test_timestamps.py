"""Timestamps as the API writes them: ISO 8601 in UTC, milliseconds, `Z`, from what either
database hands back (SQLite: naive UTC; PostgreSQL: aware)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from loopllama.ids import iso


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 5, 20, 17, 10), "2026-05-20T17:10:00.000Z"),  # naive: taken as UTC
        (datetime(2026, 5, 20, 17, 10, 0, 999_999, tzinfo=UTC), "2026-05-20T17:10:00.999Z"),
        (
            datetime(2026, 1, 1, 1, 30, 5, 1_500, tzinfo=timezone(timedelta(hours=2))),
            "2025-12-31T23:30:05.001Z",
        ),  # another offset: converted, across a year
        (None, None),
    ],
)
def test_iso(value, expected):
    assert iso(value) == expected
