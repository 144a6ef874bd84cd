"""What a tool is: a spec the model sees and one async `run` that answers with a `ToolOutcome`.

`run` never raises for an expected failure (bad input, refused address, network or SMTP error):
it returns `ToolOutcome(is_error=True)` whose `content` says why, in words the agent (and the human
reading the transcript) can act on. Only bugs escape as exceptions.

`SchemaTool` is the shared base: it checks the input against `spec.input_schema` (JSON Schema
Draft 2020-12, never fetching a `$ref`: see schema.py) before `execute` ever sees it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from loopllama.engine.tools.schema import schema_problem, validator
from loopllama.limits import MAX_JSON_DEPTH, value_depth_exceeds
from loopllama.providers.base import ToolSpec
from loopllama.settings import ToolSettings

SUMMARY_MAX_CHARS = 200


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What the engine hands to one tool call.

    `idempotency_key` is stable across retries of the same call (custom tools send it as the
    `Idempotency-Key` header; `send_email` derives the Message-ID from it).
    """

    idempotency_key: str
    settings: ToolSettings


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: str
    is_error: bool = False


class Tool(Protocol):
    spec: ToolSpec

    async def run(self, input: dict[str, Any], ctx: ToolContext) -> ToolOutcome: ...


class SchemaTool(ABC):
    """A tool whose input is validated against its own schema before it runs."""

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec

    # Checked on first use, not at construction: toolboxes are built per step, and checking a
    # schema against the metaschema costs milliseconds.
    @cached_property
    def _validator(self) -> Draft202012Validator:
        return validator(self.spec.input_schema)

    @cached_property
    def _schema_problem(self) -> str | None:
        # The API refuses bad schemas; this keeps `run` from raising if one was stored anyway.
        return schema_problem(self.spec.input_schema)

    async def run(self, input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        if self._schema_problem is not None:
            reason = f"Tool {self.spec.name} is misconfigured: {self._schema_problem}"
            return ToolOutcome(reason, is_error=True)
        problem = self.input_problem(input)
        if problem is not None:
            return ToolOutcome(f"Invalid input for {self.spec.name}: {problem}", is_error=True)
        return await self.execute(input, ctx)

    def input_problem(self, input: Any) -> str | None:
        """The most relevant schema violation of `input`, or None when it is valid."""
        if value_depth_exceeds(input, MAX_JSON_DEPTH):  # validation recurses with the input
            return f"the input is nested more than {MAX_JSON_DEPTH} levels deep"
        try:
            error = best_match(self._validator.iter_errors(input))
        except Unresolvable:  # a $ref that points nowhere (remote ones are never fetched)
            return "the tool's input schema has a $ref that cannot be resolved"
        except RecursionError:  # a recursive schema ($ref: "#") on a deep input
            return "the input is nested too deeply for the tool's input schema"
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{where}: {error.message}" if where else error.message

    @abstractmethod
    async def execute(self, input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        """Run with input that matches the schema."""


def summarize_call(name: str, input: dict[str, Any]) -> str:
    """One line for a human deciding whether to approve a call, at most 200 characters.

    'Send email to a@b.com (cc c@d.com): "Subject"', 'POST https://x/y', or
    'Call crm_upsert with {"email": "a@b.com"}'. Tolerates input that does not match the schema.
    """
    if not isinstance(input, dict):
        input = {"input": input}
    if name == "send_email" and "to" in input:
        line = f"Send email to {_addresses(input.get('to'))}"
        if input.get("cc"):
            line += f" (cc {_addresses(input.get('cc'))})"
        line += f': "{input.get("subject", "")}"'
    elif name == "http_request" and "url" in input:
        line = f"{str(input.get('method') or 'GET').upper()} {input.get('url')}"
    else:
        line = f"Call {name} with {json.dumps(input, ensure_ascii=False, default=str)}"
    line = " ".join(line.split())  # one line, whatever the input held
    if len(line) > SUMMARY_MAX_CHARS:
        line = line[: SUMMARY_MAX_CHARS - 1] + "…"
    return line


def _addresses(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
