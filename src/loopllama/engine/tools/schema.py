"""A custom tool's `input_schema`: bounded, self-contained, and validated without any I/O.

jsonschema resolves a `$ref` it does not know by fetching it: without a registry of our own it
falls back to `urllib.request.urlopen`, which reaches loopback, private addresses and `file://`
URLs, with no timeout, on the event loop. So:

- at create and PATCH time a schema may only reference itself (`$ref` / `$dynamicRef` starting
  with `#`), may declare no other `$schema` than Draft 2020-12, and is bounded in depth and size;
- at call time the validator gets a `referencing.Registry` whose `retrieve` refuses everything,
  so even a schema stored before these checks existed can never trigger a fetch.

Format assertions stay off (jsonschema's default): no format checker does I/O, and a schema's
`format` is an annotation for the model.
"""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from loopllama.limits import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, value_depth_exceeds

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")
# Keywords whose values are data, not subschemas: a {"$ref": ...} inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)


# Resolves references inside the schema being validated (jsonschema adds it as the root
# resource) and nothing else: no network, no files, not even the published metaschemas.
OFFLINE = Registry(retrieve=_refuse)  # type: ignore[call-arg]


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for `schema` that can never fetch a `$ref` target."""
    return Draft202012Validator(schema, registry=OFFLINE)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` cannot be a tool's input schema, or None.

    It must be a JSON object, at most MAX_SCHEMA_DEPTH deep and MAX_SCHEMA_BYTES as JSON, a
    valid Draft 2020-12 schema of `"type": "object"`, referencing only itself.
    """
    if not isinstance(schema, dict):
        return "input_schema must be an object"
    if value_depth_exceeds(schema, MAX_SCHEMA_DEPTH):
        return f"input_schema must not be nested more than {MAX_SCHEMA_DEPTH} levels deep"
    if len(orjson.dumps(schema)) > MAX_SCHEMA_BYTES:
        return f"input_schema must not exceed {MAX_SCHEMA_BYTES} bytes as JSON"
    problem = _reference_problem(schema)
    if problem is not None:
        return problem
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return (
            f"input_schema is not a valid JSON Schema: {where + ': ' if where else ''}{exc.message}"
        )
    if schema.get("type") != "object":
        return 'input_schema must have "type": "object"'
    return None


def _reference_problem(schema: dict[str, Any]) -> str | None:
    """The first reference to something outside the schema (iterative: depth is bounded
    already, but this must not depend on it)."""
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for keyword in _REFERENCE_KEYWORDS:
            target = node.get(keyword)
            if isinstance(target, str) and not target.startswith("#"):
                return (
                    f"input_schema may only use {keyword} within itself (a JSON pointer or "
                    f"anchor starting with '#'); remote and file references such as "
                    f"'{target[:100]}' are not allowed"
                )
        dialect = node.get("$schema")
        if isinstance(dialect, str) and dialect not in (DIALECT, DIALECT + "#"):
            return f'input_schema may only declare "$schema": "{DIALECT}"'
        stack.extend(value for key, value in node.items() if key not in _DATA_KEYWORDS)
    return None
