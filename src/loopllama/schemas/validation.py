"""Validate a request body and word its first problem the way the reference does.

The reference's messages come from zod (`String must contain at least 1 character(s)`,
`Required`, `Expected string, received number`, ...). Pydantic does the validating; this module
translates its first error into that wording, so clients can rely on the exact strings.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from loopllama.errors import InvalidRequest

Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], data: Any) -> Model:
    """`model` built from `data`, or `InvalidRequest` with the first issue's message."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(first_message(error.errors())) from None


def first_message(issues: list[Any]) -> str:
    """The first issue's message. Zod reports every unknown key of an object in one issue
    (`Unrecognized key(s) in object: 'a', 'b'`) where pydantic has one error per key."""
    first = issues[0]
    if first["type"] != "extra_forbidden":
        return issue_message(first)
    parent = tuple(first["loc"][:-1])
    names = [
        f"'{issue['loc'][-1]}'"
        for issue in issues
        if issue["type"] == "extra_forbidden" and tuple(issue["loc"][:-1]) == parent
    ]
    return f"Unrecognized key(s) in object: {', '.join(names)}"


def whole_number(value: Any) -> Any:
    """A JSON number with no fractional part (`5.0`, `1e308`) as an int, as zod's `.int()`
    accepts it, so that its bounds answer `Number must be ...`; `1.5` stays a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float) and math.isfinite(value):
        raise PydanticCustomError("not_integer", "Expected integer, received float")
    return value


def received(value: Any) -> str:
    """The name zod gives to the type of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_EXPECTED = {
    "string_type": "string",
    "bool_type": "boolean",
    "int_type": "number",
    "float_type": "number",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}


def issue_message(issue: dict[str, Any]) -> str:
    kind = issue["type"]
    ctx = issue.get("ctx") or {}
    value = issue.get("input")
    if kind == "missing":
        return "Required"
    if kind == "extra_forbidden":
        return f"Unrecognized key(s) in object: '{issue['loc'][-1]}'"
    if kind in ("not_integer", "int_from_float"):
        return "Expected integer, received float"
    if kind in ("int_parsing", "float_parsing"):  # a query parameter that is not a number
        return f"Expected number, received {received(value) if value != '' else 'string'}"
    if kind in _EXPECTED:
        return f"Expected {_EXPECTED[kind]}, received {received(value)}"
    if kind == "string_too_short":
        return f"String must contain at least {ctx['min_length']} character(s)"
    if kind == "string_too_long":
        return f"String must contain at most {ctx['max_length']} character(s)"
    if kind == "too_short":
        return f"Array must contain at least {ctx['min_length']} element(s)"
    if kind == "too_long":
        return f"Array must contain at most {ctx['max_length']} element(s)"
    if kind == "literal_error":
        options = ctx["expected"].replace(" or ", " | ").replace(", ", " | ")
        if not isinstance(value, str):
            return f"Expected {options}, received {received(value)}"
        return f"Invalid enum value. Expected {options}, received '{value}'"
    if kind == "greater_than":
        return f"Number must be greater than {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"Number must be greater than or equal to {_number(ctx['ge'])}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"Number must be less than or equal to {_number(bound)}"
    if kind == "string_pattern_mismatch":
        return "Invalid"
    if kind == "value_error":
        return str(ctx.get("error") or issue["msg"])
    return issue["msg"]


def query_int(raw: str | None, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter, or `InvalidRequest` worded like a body issue."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        try:
            float(raw)
        except ValueError:
            kind = "Expected number, received string"
        else:
            kind = "Expected integer, received float"
        raise InvalidRequest(f"Invalid '{name}': {kind}") from None
    if value < minimum:
        raise InvalidRequest(f"Invalid '{name}': Number must be greater than or equal to {minimum}")
    if value > maximum:
        raise InvalidRequest(f"Invalid '{name}': Number must be less than or equal to {maximum}")
    return value


def _number(bound: Any) -> Any:
    """`0`, not `0.0`: zod prints a JavaScript number."""
    return int(bound) if isinstance(bound, float) and bound.is_integer() else bound
