"""What makes a workflow runnable, checked at create and PATCH time (400s, never run failures).

The schema layer has checked shapes and lengths; these rules look across fields: every model
routes to a provider, every tool an agent names exists, custom tools are well formed, a
provider that cannot call tools is not handed any, and `send_email` needs an SMTP server.
"""

from __future__ import annotations

from typing import Any

from loopllama.engine.prompts import ASK_HUMAN
from loopllama.engine.tools import BUILTIN_TOOL_NAMES, check_input_schema, check_tool_url
from loopllama.errors import InvalidRequest
from loopllama.providers.registry import ProviderRegistry
from loopllama.providers.routing import UnknownModel, route_model, unknown_model_message

SMTP_MISSING = (
    "Agent '{role}' uses send_email, but this server has no SMTP server configured: set "
    "LOOPLLAMA_SMTP_URL (e.g. smtp://user:pass@mail.example.com:587) and LOOPLLAMA_SMTP_FROM, "
    "then restart the server; or remove send_email from the agent's tools"
)


def check_workflow(
    workflow: dict[str, Any], providers: ProviderRegistry, *, smtp_configured: bool = True
) -> None:
    """Raise `InvalidRequest` with the first problem of `workflow` (stored form)."""
    custom = workflow.get("tools") or []
    known = set(BUILTIN_TOOL_NAMES)
    for tool in custom:
        name = tool["name"]
        if name in known or name == ASK_HUMAN.name:
            raise InvalidRequest(f"Duplicate tool name '{name}'")
        known.add(name)
        for problem in (check_input_schema(tool["input_schema"]), check_tool_url(tool["url"])):
            if problem:
                raise InvalidRequest(f"Tool '{name}': {problem}")

    hitl = workflow.get("human_in_the_loop") or {}
    for name in hitl.get("approve_tools") or []:
        if name not in known:
            raise InvalidRequest(f"human_in_the_loop.approve_tools names unknown tool '{name}'")

    for agent in workflow["crew"]:
        model = agent.get("model") or workflow["model"]
        try:
            route = route_model(model, extra_providers=providers.extra_names)
        except UnknownModel:
            raise InvalidRequest(unknown_model_message(model)) from None
        for name in agent.get("tools") or []:
            if name not in known:
                raise InvalidRequest(f"Agent '{agent['role']}' lists unknown tool '{name}'")
        wants_tools = bool(agent.get("tools")) or bool(hitl.get("ask_questions"))
        if wants_tools and not providers.supports_tools(route.provider):
            raise InvalidRequest(
                f"Model '{model}' of agent '{agent['role']}' cannot call tools (the "
                f"{route.provider} provider has no tool calling): choose an anthropic or "
                "openai model for this agent, or give it no tools and no ask_questions"
            )
        # Accepted, such an agent would "complete" its run with an email that was never sent.
        if "send_email" in (agent.get("tools") or []) and not smtp_configured:
            raise InvalidRequest(SMTP_MISSING.format(role=agent["role"]))
    # A workflow-level model no agent uses must still be servable.
    try:
        route_model(workflow["model"], extra_providers=providers.extra_names)
    except UnknownModel:
        raise InvalidRequest(unknown_model_message(workflow["model"])) from None
