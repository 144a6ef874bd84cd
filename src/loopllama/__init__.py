"""LoopLlama: self-hostable multi-agent LLM workflows behind an HTTP API.

This top-level package is the client SDK (httpx only); importing it never imports the server.

    from loopllama import LoopLlama
"""

from loopllama.client import (
    NOT_GIVEN,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncLoopLlama,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    LoopLlama,
    LoopLlamaError,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    UnprocessableEntityError,
    __version__,
)

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncLoopLlama",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "LoopLlama",
    "LoopLlamaError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "RateLimitError",
    "UnprocessableEntityError",
    "__version__",
]
