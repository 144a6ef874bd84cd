"""SDK exceptions of the HTTP providers (Anthropic, OpenAI) turned into `ProviderError`s.

Both official SDKs share one exception shape (Stainless-generated), so one translation serves
both; each adapter passes its SDK's classes:

    APIStatusError      -> ProviderStatusError(status, short message, retry_after)
    APITimeoutError     -> ProviderTimeout                  (a subclass of APIConnectionError,
    APIConnectionError  -> ProviderConnectionError           so it is checked first)
    anything else       -> ProviderError (never transient)

The engine catches only `ProviderError`, so nothing else may escape an adapter.
"""

from __future__ import annotations

import email.utils
import errno
import os
import re
import time
from collections.abc import Mapping
from http import HTTPStatus

from loopllama.providers.base import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeout,
)

_MAX_MESSAGE = 200
# Statuses some providers use that `http.HTTPStatus` does not know.
_EXTRA_PHRASES = {529: "overloaded"}


def to_provider_error(
    provider: str,
    exc: BaseException,
    *,
    status_error: type[Exception],
    timeout_error: type[Exception],
    connection_error: type[Exception],
) -> ProviderError:
    """The `ProviderError` that describes `exc`, raised by the SDK of `provider`."""
    if isinstance(exc, status_error):
        response = exc.response  # type: ignore[attr-defined]
        return ProviderStatusError(
            response.status_code,
            short_message(exc.body, response.status_code),  # type: ignore[attr-defined]
            retry_after=retry_after_seconds(response.headers),
        )
    if isinstance(exc, timeout_error):
        return ProviderTimeout()
    if isinstance(exc, connection_error):
        return ProviderConnectionError(
            f"could not reach model provider {provider}: {connection_cause(exc)}"
        )
    return ProviderError(f"model provider {provider} call failed: {_describe(exc)}")


def short_message(body: object, status: int) -> str:
    """The vendor's `error.message` (or a plain-text body), short and starting lowercase."""
    message: object = None
    if isinstance(body, Mapping):
        error = body.get("error")
        # {"error": {"message": ...}} (Anthropic, OpenAI), {"error": "..."} (Ollama),
        # {"message": ...} / {"detail": ...} (other OpenAI-compatible servers).
        message = error.get("message") if isinstance(error, Mapping) else error
        message = message or body.get("message") or body.get("detail")
    elif isinstance(body, str) and not body.lstrip().startswith("<"):  # not an HTML error page
        message = body
    if not isinstance(message, str) or not message.strip():
        return _phrase(status)
    return _sentence_fragment(message)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    # Header lookups must ignore case; httpx headers do, a plain dict may not.
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        return max(0.0, float(lowered["retry-after-ms"]) / 1000)
    except (KeyError, ValueError):
        pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def connection_cause(exc: BaseException) -> str:
    """What went wrong on the wire, e.g. "connection refused", from the exception chain."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    # The deepest OS error is the most precise ("connection refused", "name or service not
    # known"); the transport's own wording ("all connection attempts failed") hides it.
    for error in reversed(chain):
        # os.strerror: asyncio's own strerror is "Connect call failed ('host', port)".
        if isinstance(error, OSError) and error.errno in errno.errorcode:
            return _sentence_fragment(os.strerror(error.errno))
    # Otherwise the transport's message ("server disconnected without sending a response"):
    # the first one below the SDK's generic "Connection error."
    for error in chain[1:]:
        if str(error):
            return _sentence_fragment(str(error))
    return _sentence_fragment(str(exc)) or "connection error"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {_sentence_fragment(text)}" if text else type(exc).__name__


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return _EXTRA_PHRASES.get(status, "error")


def _sentence_fragment(text: str) -> str:
    """One line, at most _MAX_MESSAGE characters, lowercase first letter, no final period."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3].rstrip() + "..."
    text = text.removesuffix(".")
    # "Overloaded" -> "overloaded", but "API key invalid" keeps its acronym.
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    return text
