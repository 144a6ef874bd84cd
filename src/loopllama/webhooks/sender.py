"""One webhook attempt over HTTP, with the address rules of the `http_request` tool.

The client's connections go through `ssrf.GuardedTransport`: the host is resolved once, every
address checked (loopback, private, link-local, metadata... refused unless the host is in
`LOOPLLAMA_HTTP_TOOL_ALLOW`), and the socket opened to a checked address. Redirects are not
followed (a 3xx is a failed attempt). The whole attempt is bounded by the timeout, and at most
`MAX_READ` bytes of the answer are read; the first `ERROR_CHARS` characters of a failure's body
go into `last_error`. Nothing here logs a header: the signature must not reach a log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from loopllama.engine.tools.http_request import describe_http_error
from loopllama.engine.tools.ssrf import DestinationError, GuardedTransport

MAX_READ = 64 * 1024
ERROR_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None


class Sender:
    """An HTTP client for webhook attempts, shared by one process's attempts (pooled)."""

    def __init__(self, allow_hosts: frozenset[str], timeout: float) -> None:
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(allow_hosts),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "LoopLlama-Webhooks/1"},
        )

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            async with (
                asyncio.timeout(self.timeout),
                self._client.stream("POST", url, content=body, headers=headers) as response,
            ):
                head = await _read_head(response)
        except (httpx.HTTPError, httpx.InvalidURL, DestinationError, TimeoutError) as exc:
            return Outcome(False, None, describe_http_error(exc, self.timeout))
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(True, code, None)
        text = head.decode(response.encoding or "utf-8", errors="replace")[:ERROR_CHARS]
        reason = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        return Outcome(False, code, f"{reason}: {text}" if text else reason)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_head(response: httpx.Response) -> bytes:
    """The first bytes of the answer; the rest, up to MAX_READ, is drained and dropped (so the
    connection can be reused), and anything beyond is not read at all."""
    head = bytearray()
    read = 0
    async for chunk in response.aiter_bytes():
        if len(head) < ERROR_CHARS * 4:
            head += chunk[: ERROR_CHARS * 4 - len(head)]
        read += len(chunk)
        if read >= MAX_READ:
            break
    return bytes(head)
