"""The SDK's exceptions: one class per HTTP status, connection and timeout errors apart.

    LoopLlamaError
    ├── APIError                       anything that went wrong talking to the server
    │   ├── APIStatusError             the server answered with an error status
    │   │   ├── BadRequestError           400  the body failed validation
    │   │   ├── AuthenticationError       401  missing, malformed or unknown API key
    │   │   ├── PermissionDeniedError     403  the key's scope or workflow limit forbids it
    │   │   ├── NotFoundError             404  missing, or owned by another account
    │   │   ├── ConflictError             409  e.g. the workflow is paused
    │   │   ├── UnprocessableEntityError  422  an Idempotency-Key reused with another request
    │   │   ├── RateLimitError            429  `retry_after` holds the server's advice
    │   │   └── InternalServerError       5xx
    │   ├── APIConnectionError         no answer: the server is unreachable or hung up
    │   │   └── APITimeoutError        no answer in time
    │   └── APIResponseValidationError an answer the SDK cannot read
    └── PollTimeoutError               `poll()` gave up waiting (also a builtin TimeoutError)

Every `APIError` has `message` (for status errors, the server's `error` string verbatim) and
`request`; status errors add `status_code`, `response` and `body` (the parsed JSON, if any).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from loopllama.client.types import Run

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "LoopLlamaError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "RateLimitError",
    "UnprocessableEntityError",
]


class LoopLlamaError(Exception):
    """Base class of every exception the SDK raises."""


class APIError(LoopLlamaError):
    """A request to the LoopLlama API did not succeed."""

    message: str
    request: httpx.Request | None

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status; `message` is its `error` string."""

    status_code: int
    response: httpx.Response
    body: Any

    def __init__(self, message: str, *, response: httpx.Response, body: Any = None) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status_code})"


class BadRequestError(APIStatusError):
    """400: the request body failed validation (`message` names the first issue)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: the resource does not exist or belongs to another account."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state (a paused workflow, a run that is
    not waiting for input)."""


class UnprocessableEntityError(APIStatusError):
    """422: the request is well formed but cannot be processed (an Idempotency-Key that was
    already used with a different request)."""


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` is the server's advice in seconds, if it gave one."""

    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, response=response, body=body)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server failed; details are in its log."""


class APIConnectionError(APIError):
    """No answer from the server: it is unreachable, refused the connection or hung up."""

    def __init__(
        self, message: str = "Connection error.", *, request: httpx.Request | None = None
    ) -> None:
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    """The server did not answer in time."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx.Request | None = None
    ) -> None:
        super().__init__(message, request=request)


class APIResponseValidationError(APIError):
    """The server answered 2xx with a body the SDK cannot read (not JSON, no `data`)."""

    response: httpx.Response
    status_code: int

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code


class PollTimeoutError(LoopLlamaError, TimeoutError):
    """`poll()` or `create_and_poll()` waited `timeout` seconds; `run` is the last state seen.

    The run itself goes on on the server: poll again, or look at it later.
    """

    run: Run

    def __init__(self, message: str, *, run: Run) -> None:
        super().__init__(message)
        self.run = run


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an error status (5xx all map to `InternalServerError`)."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status_code, APIStatusError)
