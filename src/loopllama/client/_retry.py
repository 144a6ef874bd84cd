"""Retry policy: what a failure means, whether to try again, and how long to wait first.

A failed attempt is classified by what it says about the server's side:

- *not processed*: the request certainly did no work there (the connection was never made,
  or the server refused it with 429 / 408). Safe to send again, whatever the request.
- *uncertain*: the request may have been processed (a timeout or a dropped connection after
  sending, a 5xx). Safe to send again only if sending twice does no harm.
- *final*: any other error status; a 4xx is deterministic, sending again changes nothing.

Delays grow exponentially (0.5 s, 1 s, 2 s ... capped at 8 s) with up to 25 % jitter, like
anthropic-sdk-python. A `Retry-After` (or `retry-after-ms`) header of at most 60 s replaces
the computed delay; a longer one is not waited for: the error is raised at once.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from loopllama.client._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    status_error_class,
)

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0


class Outcome(Enum):
    NOT_PROCESSED = "not processed"
    UNCERTAIN = "uncertain"
    FINAL = "final"


class Safety(Enum):
    """How a request may be repeated."""

    IDEMPOTENT = "idempotent"  # GET, PATCH of the same body, DELETE: retry any transient failure
    CREATES = "creates"  # POST that creates something: retry only what was not processed


@dataclass
class Failure:
    error: APIError
    outcome: Outcome
    retry_after: float | None = None

    @property
    def maybe_processed(self) -> bool:
        return self.outcome is Outcome.UNCERTAIN


def failure_from_exception(exc: httpx.HTTPError) -> Failure:
    """Classify an exception raised by httpx while sending."""
    request = _request_of(exc)
    if isinstance(exc, httpx.TimeoutException):
        # A connect or pool timeout means the request never left the client.
        never_sent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        outcome = Outcome.NOT_PROCESSED if never_sent else Outcome.UNCERTAIN
        return Failure(APITimeoutError(f"Request timed out: {exc}", request=request), outcome)
    if isinstance(exc, httpx.ConnectError):
        outcome = Outcome.NOT_PROCESSED
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.ProxyError):
        outcome = Outcome.FINAL
    elif isinstance(exc, httpx.TransportError):
        outcome = Outcome.UNCERTAIN  # read/write errors, a hang-up after sending
    else:
        outcome = Outcome.FINAL
    return Failure(APIConnectionError(f"Connection error: {exc}", request=request), outcome)


def failure_from_response(response: httpx.Response) -> Failure:
    """Classify an error answer (status >= 400)."""
    error = make_status_error(response)
    status = response.status_code
    if isinstance(error, RateLimitError):  # the server says when a slot frees: wait that long
        return Failure(error, Outcome.NOT_PROCESSED, error.retry_after)
    if status == 408:
        return Failure(error, Outcome.NOT_PROCESSED, retry_after_seconds(response.headers))
    if status >= 500:
        return Failure(error, Outcome.UNCERTAIN, retry_after_seconds(response.headers))
    return Failure(error, Outcome.FINAL)


def make_status_error(response: httpx.Response) -> APIStatusError:
    """The exception for an error answer, carrying the server's `error` message verbatim."""
    body: Any = None
    message = ""
    try:
        body = response.json()
    except ValueError:
        message = response.text.strip()[:500]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    elif body is not None and not message:
        message = str(body)[:500]
    if not message:
        message = response.reason_phrase or f"HTTP {response.status_code}"
    cls = status_error_class(response.status_code)
    if cls is RateLimitError:
        return RateLimitError(
            message,
            response=response,
            body=body,
            retry_after=retry_after_seconds(response.headers),
        )
    return cls(message, response=response, body=body)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The server's `retry-after-ms` / `Retry-After` advice in seconds, if it gave one."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def retry_delay(failure: Failure, safety: Safety, attempt: int, max_retries: int) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None if the failure must be raised."""
    if attempt >= max_retries or failure.outcome is Outcome.FINAL:
        return None
    if failure.outcome is Outcome.UNCERTAIN and safety is Safety.CREATES:
        return None
    if failure.retry_after is not None:
        return failure.retry_after if failure.retry_after <= MAX_RETRY_AFTER else None
    return backoff(attempt)


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5 s, 1 s, 2 s, ... at most 8 s."""
    delay = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _request_of(exc: httpx.HTTPError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:
        return None
