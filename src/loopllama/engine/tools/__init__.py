"""Tools agents call: `send_email`, `http_request`, and a workflow's custom HTTP tools.

base.py          ToolContext, ToolOutcome, the Tool protocol, summarize_call
registry.py      build_toolbox and the create-time checks of custom tool definitions
email.py         send_email over LOOPLLAMA_SMTP_URL
http_request.py  http_request
custom.py        custom tools: POST the input as JSON to the user's endpoint
schema.py        custom tools' input schemas: bounded, self-contained, never fetched
ssrf.py          which addresses HTTP tools may reach, enforced at connect time
"""

from loopllama.engine.tools.base import Tool, ToolContext, ToolOutcome, summarize_call
from loopllama.engine.tools.registry import (
    BUILTIN_TOOL_NAMES,
    build_toolbox,
    check_input_schema,
    check_tool_url,
    mask_headers,
)

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "Tool",
    "ToolContext",
    "ToolOutcome",
    "build_toolbox",
    "check_input_schema",
    "check_tool_url",
    "mask_headers",
    "summarize_call",
]
