"""The workflow on the wire: what create and PATCH accept, and what the API returns."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loopllama.ids import iso

SECRET_MASK = "********"
_TOOL_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


def _tool_name(value: str) -> str:
    if not _TOOL_NAME.match(value):
        raise ValueError(
            f"Invalid tool name '{value}': use 1-64 characters of a-z, 0-9, '_' and '-'"
        )
    return value


ToolName = Annotated[str, AfterValidator(_tool_name)]


class _Body(BaseModel):
    # Strict: "5" is not a number and 5 is not a string. Unknown keys are ignored.
    model_config = ConfigDict(strict=True, extra="ignore")


class AgentIn(_Body):
    role: Annotated[str, Field(min_length=1, max_length=60)]
    systemPrompt: Annotated[str, Field(min_length=1, max_length=8000)]
    model: Annotated[str, Field(max_length=80)] = Field(default=None)  # type: ignore[assignment]
    tools: Annotated[list[ToolName], Field(max_length=20)] = Field(default_factory=list)


class HumanInTheLoopIn(_Body):
    ask_questions: bool = False
    approve_tools: Annotated[list[ToolName], Field(max_length=50)] = Field(default_factory=list)
    timeout_seconds: Annotated[int, Field(ge=1, le=30 * 24 * 3600)] | None = None
    on_timeout: Literal["reject", "fail"] = "reject"


class CustomToolIn(_Body):
    name: ToolName
    description: Annotated[str, Field(min_length=1, max_length=1024)]
    input_schema: dict[str, Any]
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    headers: dict[str, Annotated[str, Field(max_length=8192)]] = Field(default_factory=dict)


Name = Annotated[str, Field(min_length=1, max_length=120)]
Description = Annotated[str, Field(max_length=500)] | None
ModelName = Annotated[str, Field(max_length=80)]
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
