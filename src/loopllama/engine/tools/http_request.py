"""The `http_request` built-in: one HTTP call to a public URL, answered with status and body.

The body is cut at MAX_BODY_CHARS characters (and the agent told so); at most 4 bytes per
character are downloaded, so a huge response costs no more than that. Redirects are followed up
to `ssrf.MAX_REDIRECTS` hops; each hop's connection passes the address policy (see `ssrf`), so a
public URL that redirects to 169.254.169.254 is refused. A 4xx or 5xx is an answer, not an error:
the agent reads the status.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from loopllama.engine.tools.base import SchemaTool, ToolContext, ToolOutcome
from loopllama.engine.tools.ssrf import MAX_REDIRECTS, DestinationError, guarded_client, url_problem
from loopllama.providers.base import ToolSpec

MAX_BODY_CHARS = 8000
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

HTTP_REQUEST_SPEC = ToolSpec(
    name="http_request",
    description=(
        "Make an HTTP request to a public http:// or https:// URL. Answers with the status line, "
        f"the content type and the response body (the first {MAX_BODY_CHARS:,} characters)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "method": {"type": "string", "enum": list(METHODS)},
            "url": {"type": "string", "description": "Absolute http:// or https:// URL."},
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Request headers.",
            },
            "body": {"type": "string", "description": "Request body, sent as is."},
        },
        "required": ["method", "url"],
        "additionalProperties": False,
    },
)


class HttpRequestTool(SchemaTool):
    def __init__(self) -> None:
        super().__init__(HTTP_REQUEST_SPEC)

    async def execute(self, input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        url = input["url"]
        problem = url_problem(url)
        if problem is not None:
            return ToolOutcome(f"Invalid input for http_request: {problem}", is_error=True)
        settings = ctx.settings
        try:
            async with (
                asyncio.timeout(settings.timeout),
                guarded_client(settings, follow_redirects=True) as client,
                client.stream(
                    input["method"],
                    url,
                    headers=input.get("headers"),
                    content=input.get("body"),
                ) as response,
            ):
                body, truncated = await read_body(response)
        except (httpx.HTTPError, httpx.InvalidURL, DestinationError, TimeoutError) as exc:
            return ToolOutcome(
                f"HTTP request failed: {describe_http_error(exc, settings.timeout)}",
                is_error=True,
            )
        lines = [f"HTTP {response.status_code} {response.reason_phrase}".rstrip()]
        if response.history:
            lines.append(f"Redirected to: {response.url}")
        if "content-type" in response.headers:
            lines.append(f"Content-Type: {response.headers['content-type']}")
        return ToolOutcome("\n".join(lines) + "\n\n" + with_truncation_note(body, truncated))


async def read_body(response: httpx.Response, limit: int = MAX_BODY_CHARS) -> tuple[str, bool]:
    """The first `limit` characters of a streamed body, and whether there was more."""
    max_bytes = limit * 4 + 1  # no encoding spends more than 4 bytes on a character
    raw = bytearray()
    more = False
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) >= max_bytes:
            more = True
            break
    text = bytes(raw).decode(response.encoding or "utf-8", errors="replace")
    return text[:limit], more or len(text) > limit


def with_truncation_note(body: str, truncated: bool) -> str:
    if not truncated:
        return body
    return f"{body}\n[Body truncated: showing the first {len(body):,} characters.]"


def describe_http_error(exc: Exception, timeout: float) -> str:
    """A short reason for a failed HTTP call; never echoes request headers (they may be secret)."""
    if isinstance(exc, DestinationError):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {timeout:g} seconds"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "redirected to a URL that is not http:// or https://"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({exc})" if str(exc) else "could not connect"
    if isinstance(exc, httpx.InvalidURL):
        return "invalid URL"
    if isinstance(exc, httpx.LocalProtocolError):
        return "the request is malformed (check header names and values)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol"
    return f"{type(exc).__name__}"
