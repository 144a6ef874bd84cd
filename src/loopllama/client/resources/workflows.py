"""`client.workflows`: list, create, retrieve, update (pause, activate, lock, unlock) and delete
workflows; list, retrieve and restore their versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopllama.client import _core
from loopllama.client.types import (
    NOT_GIVEN,
    Agent,
    HumanInTheLoop,
    NotGiven,
    Tool,
    Workflow,
    WorkflowPage,
    WorkflowVersion,
)

if TYPE_CHECKING:
    from loopllama.client._client import AsyncLoopLlama, LoopLlama

AgentParam = Agent | Mapping[str, Any]
ToolParam = Tool | Mapping[str, Any]
HumanInTheLoopParam = HumanInTheLoop | Mapping[str, Any]


def _agent(agent: Any) -> Any:
    if isinstance(agent, Agent):
        return agent.to_dict()
    if not isinstance(agent, Mapping):
        return agent  # a wrong shape: the server's 400 names the field and what it expected
    wire = dict(agent)
    if "system_prompt" in wire and "systemPrompt" not in wire:
        wire["systemPrompt"] = wire.pop("system_prompt")  # accept the Python spelling too
    return wire


def _tool(tool: Any) -> Any:
    if isinstance(tool, Tool):
        return tool.to_dict()
    return dict(tool) if isinstance(tool, Mapping) else tool


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def workflow_body(fields: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict:
    """The JSON body of a create or update: NOT_GIVEN fields are left out, None is sent as
    null, typed objects are turned into their wire form, `extra_body` is merged last.

    Values of the wrong shape (`crew="writer"`, a crew that is one mapping, `tools=["x"]`) are
    sent as they are, so the server answers with a 400 that names the field (BadRequestError)
    instead of the SDK failing on them with an unrelated Python error."""
    body: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, NotGiven):
            continue
        if key == "crew" and _is_list(value):
            value = [_agent(a) for a in value]
        elif key == "tools" and _is_list(value):
            value = [_tool(t) for t in value]
        elif key == "human_in_the_loop" and isinstance(value, HumanInTheLoop):
            value = value.to_dict()
        body[key] = value
    body.update(extra_body or {})
    return body


class Workflows:
    """Workflows of the account the API key belongs to."""

    def __init__(self, client: LoopLlama) -> None:
        self._client = client

    def list(self, *, limit: int | None = None, after: str | None = None) -> WorkflowPage:
        """The account's workflows, most recently updated first: every one, or with `limit`
        (1-1000) and/or `after` (a workflow id from the previous page) one page of them;
        the result's `has_more` says whether another page follows."""
        return self._client._request(_core.list_workflows(limit, after))

    def create(
        self,
        *,
        name: str,
        description: str | NotGiven | None = NOT_GIVEN,
        model: str | NotGiven = NOT_GIVEN,
        crew: Sequence[AgentParam] | NotGiven = NOT_GIVEN,
        human_in_the_loop: HumanInTheLoopParam | NotGiven | None = NOT_GIVEN,
        tools: Sequence[ToolParam] | NotGiven = NOT_GIVEN,
        max_cost_usd: float | NotGiven | None = NOT_GIVEN,
        max_tokens: int | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Workflow:
        """Create a workflow (201).

        Args:
            name: 1-120 characters.
            description: up to 500 characters.
            model: default model of agents that set none (e.g. "claude-sonnet-4-6",
                "openai/gpt-4.1"); the server's default if left out.
            crew: 1-10 agents, as `Agent(role=..., system_prompt=...)` or wire dicts
                (`{"role": ..., "systemPrompt": ...}`); the planner -> writer crew if left out.
            human_in_the_loop: e.g. `{"ask_questions": True, "approve_tools": ["send_email"]}`.
            tools: custom tools (`Tool(...)` or dicts) that agents may list by name.
            max_cost_usd: a run's budget in dollars (> 0); over it, the run fails after the
                model call that crossed it. None: no budget.
            max_tokens: a run's budget in tokens (in + out, all steps). None: no budget.
            extra_body: more fields to send as they are (for server features newer than the SDK).

        Raises:
            BadRequestError: a field failed validation (the message names it).

        Not retried after an uncertain failure (it may have created the workflow).
        """
        body = workflow_body(
            {
                "name": name,
                "description": description,
                "model": model,
                "crew": crew,
                "human_in_the_loop": human_in_the_loop,
                "tools": tools,
                "max_cost_usd": max_cost_usd,
                "max_tokens": max_tokens,
            },
            extra_body,
        )
        return self._client._request(_core.create_workflow(body))

    def retrieve(self, workflow_id: str) -> Workflow:
        """One workflow. Raises NotFoundError if it does not exist or is not yours."""
        return self._client._request(_core.retrieve_workflow(workflow_id))

    def update(
        self,
        workflow_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        model: str | NotGiven = NOT_GIVEN,
        crew: Sequence[AgentParam] | NotGiven = NOT_GIVEN,
        status: str | NotGiven = NOT_GIVEN,
        human_in_the_loop: HumanInTheLoopParam | NotGiven | None = NOT_GIVEN,
        tools: Sequence[ToolParam] | NotGiven = NOT_GIVEN,
        max_cost_usd: float | NotGiven | None = NOT_GIVEN,
        max_tokens: int | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Workflow:
        """Change some fields of a workflow (PATCH); fields left out keep their value.

        `status` is "active" or "paused" (see `pause()` / `activate()`). Runs already
        triggered keep the workflow as it was. Returns the updated workflow.
        """
        body = workflow_body(
            {
                "name": name,
                "description": description,
                "model": model,
                "crew": crew,
                "status": status,
                "human_in_the_loop": human_in_the_loop,
                "tools": tools,
                "max_cost_usd": max_cost_usd,
                "max_tokens": max_tokens,
            },
            extra_body,
        )
        return self._client._request(_core.update_workflow(workflow_id, body))

    def pause(self, workflow_id: str) -> Workflow:
        """Pause a workflow: triggering a run on it then fails with ConflictError."""
        return self.update(workflow_id, status="paused")

    def activate(self, workflow_id: str) -> Workflow:
        """Reactivate a paused workflow."""
        return self.update(workflow_id, status="active")

    def delete(self, workflow_id: str) -> None:
        """Delete a workflow (its runs stay retrievable by id)."""
        return self._client._request(_core.delete_workflow(workflow_id))

    def lock(self, workflow_id: str) -> Workflow:
        """Lock a workflow: changes (but status), restores and deletes then raise
        PermissionDeniedError until `unlock`. Triggering still works."""
        return self.update(workflow_id, extra_body={"locked": True})

    def unlock(self, workflow_id: str) -> Workflow:
        """Unlock a workflow: it accepts changes, restores and deletes again."""
        return self.update(workflow_id, extra_body={"locked": False})

    def versions(self, workflow_id: str) -> list[WorkflowVersion]:
        """Every definition the workflow has had, newest first (a new one per change of
        model, crew, human_in_the_loop, tools or max_run_seconds)."""
        return self._client._request(_core.list_versions(workflow_id))

    def version(self, workflow_id: str, version: int) -> WorkflowVersion:
        """One version. Raises NotFoundError ("Version not found") if it does not exist."""
        return self._client._request(_core.retrieve_version(workflow_id, version))

    def restore(self, workflow_id: str, version: int) -> Workflow:
        """Make `version`'s definition current again (recorded as a new version)."""
        return self._client._request(_core.restore_version(workflow_id, version))


class AsyncWorkflows:
    """Workflows of the account the API key belongs to (async; see `Workflows`)."""

    def __init__(self, client: AsyncLoopLlama) -> None:
        self._client = client

    async def list(self, *, limit: int | None = None, after: str | None = None) -> WorkflowPage:
        """The account's workflows, most recently updated first: every one, or with `limit`
        (1-1000) and/or `after` (a workflow id from the previous page) one page of them;
        the result's `has_more` says whether another page follows."""
        return await self._client._request(_core.list_workflows(limit, after))

    async def create(
        self,
        *,
        name: str,
        description: str | NotGiven | None = NOT_GIVEN,
        model: str | NotGiven = NOT_GIVEN,
        crew: Sequence[AgentParam] | NotGiven = NOT_GIVEN,
        human_in_the_loop: HumanInTheLoopParam | NotGiven | None = NOT_GIVEN,
        tools: Sequence[ToolParam] | NotGiven = NOT_GIVEN,
        max_cost_usd: float | NotGiven | None = NOT_GIVEN,
        max_tokens: int | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Workflow:
        """Create a workflow (201); the arguments are those of `Workflows.create`."""
        body = workflow_body(
            {
                "name": name,
                "description": description,
                "model": model,
                "crew": crew,
                "human_in_the_loop": human_in_the_loop,
                "tools": tools,
                "max_cost_usd": max_cost_usd,
                "max_tokens": max_tokens,
            },
            extra_body,
        )
        return await self._client._request(_core.create_workflow(body))

    async def retrieve(self, workflow_id: str) -> Workflow:
        """One workflow. Raises NotFoundError if it does not exist or is not yours."""
        return await self._client._request(_core.retrieve_workflow(workflow_id))

    async def update(
        self,
        workflow_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        model: str | NotGiven = NOT_GIVEN,
        crew: Sequence[AgentParam] | NotGiven = NOT_GIVEN,
        status: str | NotGiven = NOT_GIVEN,
        human_in_the_loop: HumanInTheLoopParam | NotGiven | None = NOT_GIVEN,
        tools: Sequence[ToolParam] | NotGiven = NOT_GIVEN,
        max_cost_usd: float | NotGiven | None = NOT_GIVEN,
        max_tokens: int | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Workflow:
        """Change some fields of a workflow (PATCH); see `Workflows.update`."""
        body = workflow_body(
            {
                "name": name,
                "description": description,
                "model": model,
                "crew": crew,
                "status": status,
                "human_in_the_loop": human_in_the_loop,
                "tools": tools,
                "max_cost_usd": max_cost_usd,
                "max_tokens": max_tokens,
            },
            extra_body,
        )
        return await self._client._request(_core.update_workflow(workflow_id, body))

    async def pause(self, workflow_id: str) -> Workflow:
        """Pause a workflow: triggering a run on it then fails with ConflictError."""
        return await self.update(workflow_id, status="paused")

    async def activate(self, workflow_id: str) -> Workflow:
        """Reactivate a paused workflow."""
        return await self.update(workflow_id, status="active")

    async def lock(self, workflow_id: str) -> Workflow:
        """Lock a workflow; see `Workflows.lock`."""
        return await self.update(workflow_id, extra_body={"locked": True})

    async def unlock(self, workflow_id: str) -> Workflow:
        """Unlock a workflow; see `Workflows.unlock`."""
        return await self.update(workflow_id, extra_body={"locked": False})

    async def versions(self, workflow_id: str) -> list[WorkflowVersion]:
        """Every definition the workflow has had, newest first."""
        return await self._client._request(_core.list_versions(workflow_id))

    async def version(self, workflow_id: str, version: int) -> WorkflowVersion:
        """One version; see `Workflows.version`."""
        return await self._client._request(_core.retrieve_version(workflow_id, version))

    async def restore(self, workflow_id: str, version: int) -> Workflow:
        """Make `version`'s definition current again (as a new version)."""
        return await self._client._request(_core.restore_version(workflow_id, version))

    async def delete(self, workflow_id: str) -> None:
        """Delete a workflow (its runs stay retrievable by id)."""
        return await self._client._request(_core.delete_workflow(workflow_id))
