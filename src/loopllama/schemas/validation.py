"""Validate a request body and word its first problem the way the reference does.

The reference's messages come from zod (`String must contain at least 1 character(s)`,
`Required`, `Expected string, received number`, ...). Pydantic does the validating; this module
translates its first error into that wording, so clients can rely on the exact strings.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from loopllama.errors import InvalidRequest

Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], data: Any) -> Model:
    """`model` built from `data`, or `InvalidRequest` with the first issue's message."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(issue_message(error.errors()[0])) from None


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


def _number(bound: Any) -> Any:
    """`0`, not `0.0`: zod prints a JavaScript number."""
    return int(bound) if isinstance(bound, float) and bound.is_integer() else bound
