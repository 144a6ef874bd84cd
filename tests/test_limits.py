"""The JSON depth bound agrees with a plain bracket count on any document."""

from __future__ import annotations

import json
import random

import pytest

from loopllama.limits import json_depth_exceeds, value_depth_exceeds


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _document(rng: random.Random, depth: int) -> object:
    """A document exactly `depth` deep: a spine, with shallow branches and leaves beside it."""
    if depth == 0:
        return rng.choice([1, "[{ not brackets }]", 'a "quoted" \\ one', None])
    children = [_document(rng, depth - 1)]
    children += [
        _document(rng, rng.randint(0, min(2, depth - 1))) for _ in range(rng.randint(0, 2))
    ]
    rng.shuffle(children)
    if rng.random() < 0.5:
        return children
    return {f"k{i}[": child for i, child in enumerate(children)}


def test_agrees_with_the_real_depth_on_random_documents() -> None:
    rng = random.Random(9)
    for _ in range(500):
        value = _document(rng, rng.randint(1, 100))
        deep = _depth(value) > 64
        assert json_depth_exceeds(json.dumps(value).encode()) is deep
        assert value_depth_exceeds(value) is deep


@pytest.mark.parametrize(
    ("raw", "deep"),
    [
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b"[" * 500_000 + b"]" * 500_000, True),
        (b"[[]" * 100_000 + b"]" * 100_000, True),
        (b"[]" * 500_000, False),
        (b'["' + b"[" * 1000 + b'"]', False),  # brackets inside a string
        (b"[" * 100, True),  # unclosed, but too deep whatever follows
        (b"[]]" * 100, False),  # malformed and shallow: the parser reports it
    ],
)
def test_edge_cases(raw: bytes, deep: bool) -> None:
    assert json_depth_exceeds(raw) is deep
