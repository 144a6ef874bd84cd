"""The tools a run can offer, and the checks a workflow's custom tool definitions must pass.

`build_toolbox` gives the built-ins plus the workflow's custom tools, by name (the engine adds
`ask_human` itself). `check_input_schema` and `check_tool_url` run when a workflow is created or
patched; each returns None when fine, or a short message for a 400. `mask_headers` is how custom
tool headers are shown (API output, logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopllama.engine.tools.base import Tool
from loopllama.engine.tools.custom import CustomHttpTool, mask_headers
from loopllama.engine.tools.email import SendEmailTool
from loopllama.engine.tools.http_request import HttpRequestTool
from loopllama.engine.tools.schema import schema_problem
from loopllama.engine.tools.ssrf import url_problem
from loopllama.settings import ToolSettings

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "build_toolbox",
    "check_input_schema",
    "check_tool_url",
    "mask_headers",
]

BUILTIN_TOOL_NAMES = frozenset({"send_email", "http_request"})


def build_toolbox(custom_tools: list[Mapping[str, Any]], settings: ToolSettings) -> dict[str, Tool]:
    """Built-ins and custom tools by name. A name used twice (or a built-in's) is a ValueError:
    the API refuses such workflows, so meeting one here is a bug, not an input error.

    `settings` only shapes what the model is told (the From address of send_email); each call
    reads its settings from its `ToolContext`.
    """
    toolbox: dict[str, Tool] = {
        "send_email": SendEmailTool(from_address=settings.smtp_from),
        "http_request": HttpRequestTool(),
    }
    for definition in custom_tools:
        name = definition["name"]
        if name in toolbox:
            raise ValueError(f"tool name {name!r} is used twice")
        toolbox[name] = CustomHttpTool.from_definition(definition)
    return toolbox


def check_input_schema(schema: Any) -> str | None:
    """None if `schema` is a valid JSON Schema (Draft 2020-12) of type object, else why not."""
    return schema_problem(schema)


def check_tool_url(url: Any) -> str | None:
    """None if `url` is an absolute http(s) URL with a host and no credentials, else why not.

    No DNS lookup: whether the host may be reached is decided at call time (see `ssrf`).
    """
    problem = url_problem(url)
    if problem is not None:
        return problem
    if "@" in url.split("://", 1)[1].split("/", 1)[0]:
        return "url must not contain credentials; put them in headers"
    return None
