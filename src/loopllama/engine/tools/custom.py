"""Custom HTTP tools defined on a workflow: POST the input as JSON to the user's endpoint.

A definition is `{"name", "description", "input_schema", "url", "headers"}`. Each call sends the
definition's headers (secrets: never logged unmasked, never echoed in a result), a JSON body, and
`Idempotency-Key: <ctx.idempotency_key>` so the endpoint can drop a retried call. A 2xx answer
hands the body (truncated like `http_request`) to the agent; anything else is an error result
naming the status. Redirects are not followed: a 3xx is an error, so the secret headers never
travel to a second host. The URL passes the same address policy as `http_request` (an endpoint on
loopback or a private network must be listed in `LOOPLLAMA_HTTP_TOOL_ALLOW`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from loopllama.engine.tools.base import SchemaTool, ToolContext, ToolOutcome
from loopllama.engine.tools.http_request import describe_http_error, read_body, with_truncation_note
from loopllama.engine.tools.ssrf import DestinationError, guarded_client, url_problem
from loopllama.providers.base import ToolSpec

logger = logging.getLogger(__name__)

MASK = "****"

# RFC 9110 token and field value (visible ASCII, inner spaces and tabs). Checked here because a
# malformed value makes httpcore log the raw header in its debug trace.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?")


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The same header names, every value replaced by "****" (nothing of the secret is kept)."""
    return dict.fromkeys(headers, MASK)


def header_problem(headers: Mapping[str, str]) -> str | None:
    """Why these headers cannot be sent, naming the header but never its value; None if fine."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            return f"header name {name!r} is invalid"
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            return f"the value of header {name!r} is invalid (printable ASCII only)"
    return None


class CustomHttpTool(SchemaTool):
    def __init__(
        self,
        name: str,
        description: str,
        input_schema: dict[str, Any],
        url: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(ToolSpec(name, description, input_schema))
        self.url = url
        self._headers = dict(headers or {})

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> CustomHttpTool:
        return cls(
            name=definition["name"],
            description=definition.get("description") or "",
            input_schema=definition["input_schema"],
            url=definition["url"],
            headers=definition.get("headers") or {},
        )

    def __repr__(self) -> str:
        return f"CustomHttpTool(name={self.spec.name!r}, url={self.url!r})"

    async def execute(self, input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        name = self.spec.name
        problem = url_problem(self.url) or header_problem(self._headers)
        if problem is not None:
            return ToolOutcome(f"Tool {name} is misconfigured: {problem}", is_error=True)
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Idempotency-Key": ctx.idempotency_key,
        }
        logger.debug("tool %s: POST %s headers=%s", name, self.url, mask_headers(headers))
        settings = ctx.settings
        try:
            async with (
                asyncio.timeout(settings.timeout),
                guarded_client(settings, follow_redirects=False) as client,
                client.stream(
                    "POST", self.url, content=json.dumps(input).encode(), headers=headers
                ) as response,
            ):
                body, truncated = await read_body(response)
        except (httpx.HTTPError, httpx.InvalidURL, DestinationError, TimeoutError) as exc:
            reason = describe_http_error(exc, settings.timeout)
            return ToolOutcome(f"Tool {name} failed: {reason}", is_error=True)
        text = with_truncation_note(body, truncated)
        if not response.is_success:
            status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
            return ToolOutcome(f"Tool {name} failed: {status}\n\n{text}".rstrip(), is_error=True)
        return ToolOutcome(text)
