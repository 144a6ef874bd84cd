"""The workflow on the wire: what create and PATCH accept, and what the API returns."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from loopllama.ids import iso
from loopllama.schemas.validation import whole_number

SECRET_MASK = "********"
TOOL_NAME_PATTERN = "^[a-z0-9_-]+$"
# RFC 9110: a header name is a token; a value is visible ASCII with inner spaces and tabs
# (no CR or LF: a value must never start a second header).
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
HEADER_VALUE_PATTERN = r"^([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?$"
_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_HEADER_VALUE = re.compile(HEADER_VALUE_PATTERN)


def _tool_name(value: str) -> str:
    if not _TOOL_NAME.fullmatch(value):
        raise ValueError(f"Invalid tool name '{value}': use only a-z, 0-9, '_' and '-'")
    return value


# Lengths first (the one wording of every length limit), then the alphabet. The pattern is
# published in the OpenAPI document; the message of a mismatch names the rule.
ToolName = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": TOOL_NAME_PATTERN}),
    AfterValidator(_tool_name),
]


def _headers(value: dict[str, str]) -> dict[str, str]:
    # Checked when the workflow is saved, not only when the tool runs: a value with CR/LF
    # would otherwise sit in the database until a run fails on it.
    for name, header in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"Invalid header name '{name}': use letters, digits and !#$%&'*+-.^_`|~"
            )
        if not _HEADER_VALUE.fullmatch(header):
            raise ValueError(
                f"Invalid value of header '{name}': use visible ASCII characters and inner "
                "spaces only (no CR, LF or other control characters)"
            )
    return value


class _Body(BaseModel):
    # Strict: "5" is not a number and 5 is not a string. An unknown key is an error (a
    # misspelled field must never be silently dropped).
    model_config = ConfigDict(strict=True, extra="forbid")


class AgentIn(_Body):
    role: Annotated[str, Field(min_length=1, max_length=60)]
    systemPrompt: Annotated[str, Field(min_length=1, max_length=8000)]
    model: Annotated[str, Field(min_length=1, max_length=80)] = Field(default=None)  # type: ignore[assignment]
    tools: Annotated[list[ToolName], Field(max_length=20)] = Field(default_factory=list)


class HumanInTheLoopIn(_Body):
    ask_questions: bool = False
    approve_tools: Annotated[list[ToolName], Field(max_length=50)] = Field(default_factory=list)
    timeout_seconds: (
        Annotated[int, BeforeValidator(whole_number), Field(ge=1, le=30 * 24 * 3600)] | None
    ) = None
    on_timeout: Literal["reject", "fail"] = "reject"


HeaderName = Annotated[str, Field(json_schema_extra={"pattern": HEADER_NAME_PATTERN})]
HeaderValue = Annotated[
    str, Field(max_length=8192, json_schema_extra={"pattern": HEADER_VALUE_PATTERN})
]


class CustomToolIn(_Body):
    name: ToolName
    description: Annotated[str, Field(min_length=1, max_length=1024)]
    input_schema: dict[str, Any]
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    headers: Annotated[
        dict[HeaderName, HeaderValue],
        AfterValidator(_headers),
        Field(json_schema_extra={"additionalProperties": False}),
    ] = Field(default_factory=dict)


Name = Annotated[str, Field(min_length=1, max_length=120)]
Description = Annotated[str, Field(max_length=500)] | None
ModelName = Annotated[str, Field(min_length=1, max_length=80)]
Crew = Annotated[list[AgentIn], Field(min_length=1, max_length=10)]
Tools = Annotated[list[CustomToolIn], Field(max_length=20)]
# null: the server's LOOPLLAMA_MAX_RUN_SECONDS.
MaxRunSeconds = Annotated[int, Field(ge=1, le=86_400)] | None
# Run budgets (EXTENSIONS part 9): dollars > 0 and tokens in + out per run; null: none.
MaxCostUsd = Annotated[float, Field(gt=0, le=1_000_000)] | None
MaxTokens = Annotated[int, Field(ge=1, le=1_000_000_000)] | None


class WorkflowCreate(_Body):
    name: Name
    description: Description = None
    model: ModelName = Field(default=None)  # type: ignore[assignment]
    crew: Crew = Field(default=None)  # type: ignore[assignment]
    human_in_the_loop: HumanInTheLoopIn | None = None
    tools: Tools = Field(default_factory=list)
    max_run_seconds: MaxRunSeconds = None
    max_cost_usd: MaxCostUsd = None
    max_tokens: MaxTokens = None


class WorkflowUpdate(_Body):
    name: Name = Field(default=None)  # type: ignore[assignment]
    description: Description = None
    model: ModelName = Field(default=None)  # type: ignore[assignment]
    crew: Crew = Field(default=None)  # type: ignore[assignment]
    status: Literal["active", "paused"] = Field(default=None)  # type: ignore[assignment]
    human_in_the_loop: HumanInTheLoopIn | None = None
    tools: Tools = Field(default=None)  # type: ignore[assignment]
    max_run_seconds: MaxRunSeconds = None
    max_cost_usd: MaxCostUsd = None
    max_tokens: MaxTokens = None
    locked: bool = Field(default=None)  # type: ignore[assignment]


def agent_record(agent: AgentIn) -> dict[str, Any]:
    """How an agent is stored and shown: optional keys only when set."""
    record: dict[str, Any] = {"role": agent.role, "systemPrompt": agent.systemPrompt}
    if agent.model is not None:
        record["model"] = agent.model
    if agent.tools:
        record["tools"] = list(agent.tools)
    return record


def tool_record(tool: CustomToolIn, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """How a custom tool is stored. A masked header value sent back keeps the stored secret."""
    old_headers = (previous or {}).get("headers") or {}
    headers = {
        key: old_headers[key] if value == SECRET_MASK and key in old_headers else value
        for key, value in tool.headers.items()
    }
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "url": tool.url,
        "headers": headers,
    }


def masked_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**tool, "headers": {key: SECRET_MASK for key in tool.get("headers") or {}}}
        for tool in tools
    ]


def workflow_public(row: dict[str, Any], *, with_updated_at: bool = True) -> dict[str, Any]:
    body = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "model": row["model"],
        "crew": row["crew"],
        "human_in_the_loop": row["human_in_the_loop"],
        "tools": masked_tools(row["tools"]),
        "max_run_seconds": row["max_run_seconds"],
        "max_cost_usd": row["max_cost_usd"],
        "max_tokens": row["max_tokens"],
        "version": row["version"],
        "locked": bool(row["locked"]),
        "created_at": iso(row["created_at"]),
    }
    if with_updated_at:  # the reference leaves it off the create response
        body["updated_at"] = iso(row["updated_at"])
    return body


def version_public(row: dict[str, Any]) -> dict[str, Any]:
    definition = row["definition"]
    return {
        "version": row["version"],
        "model": definition["model"],
        "crew": definition["crew"],
        "human_in_the_loop": definition["human_in_the_loop"],
        "tools": masked_tools(definition["tools"]),
        "max_run_seconds": definition.get("max_run_seconds"),
        "max_cost_usd": definition.get("max_cost_usd"),
        "max_tokens": definition.get("max_tokens"),
        "created_at": iso(row["created_at"]),
    }
