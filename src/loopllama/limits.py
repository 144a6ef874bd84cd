"""Bounds on what a client (or a model) can send, in one place; the README's "Limits" lists them.

Deeply nested JSON is refused before it becomes Python objects: recursive code (jsonschema,
orjson's encoder, which stops at 255 levels) would otherwise fail with a 500 or a crashed run.
The depth is measured on the raw bytes, outside strings, with C-speed primitives only.
"""

from __future__ import annotations

import re
from typing import Any

# Nesting of a request body's JSON (objects and arrays), and of a model's tool-call input.
MAX_JSON_DEPTH = 64
# A custom tool's `input_schema`: nesting and size (as compact JSON).
MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_BYTES = 64 * 1024
# A request's line and header fields, together (`loopllama serve`; larger: 431).
MAX_HEADER_BYTES = 64 * 1024
# A path id (workflow, run, ...): ours are 25 characters; anything longer names nothing.
MAX_ID_LENGTH = 64

# A string literal, its closing quote optional so that an unterminated one is consumed in one
# pass instead of being retried from each of its escaped quotes (quadratic time).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `raw` nests objects and arrays deeper than `limit`.

    Brackets inside strings do not count. Each round deletes every innermost `[]` pair, which
    lowers the height of the bracket tree by exactly one; what is left after `limit` rounds
    was nested deeper. Every step is a C-speed bytes operation (at worst ~30 ms for 1 MiB).
    Malformed text answers False: the parser that runs next reports it.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:  # depth never exceeds the opening count
        return False
    brackets = _STRING.sub(b"", raw).translate(_SQUARE, _NOT_BRACKET)
    chain = b"[" * (limit + 1)  # that many opening brackets in a row nest that deep
    for _ in range(limit):
        if chain in brackets:
            return True
        shorter = brackets.replace(b"[]", b"")
        if not shorter:
            return False
        if len(shorter) == len(brackets):  # nothing left to pair: unbalanced, malformed
            return False
        brackets = shorter
    return brackets.count(b"[") == brackets.count(b"]")


def value_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests objects and arrays deeper than `limit` (iterative,
    so a value nested far deeper than Python's recursion limit is measured safely)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def plausible_id(value: str) -> bool:
    """Whether `value` could be one of our ids. Anything else (too long, a NUL, which
    PostgreSQL cannot even compare) is refused without a database round trip."""
    return 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and value.isalnum()
