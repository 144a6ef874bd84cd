"""Domain errors: raised deep inside, mapped to HTTP in one table at the edge (api/errors.py).

    LoopLlamaError
    ├── NotFound              the resource does not exist or another account owns it
    │   └── VersionNotFound
    ├── InvalidRequest        the body failed validation (message = the first issue)
    ├── Unauthenticated       missing, malformed, unknown, revoked or expired API key
    ├── Forbidden             403: the action is refused whatever the resource's state
    │   ├── PermissionDenied  the key's scope or workflow limit does not allow it
    │   └── WorkflowLocked
    ├── Conflict              the resource's state forbids the action
    │   ├── WorkflowPaused
    │   ├── WorkflowDeleted
    │   ├── RunNotWaiting
    │   ├── RunFinished
    │   ├── RunNotRetryable
    │   ├── SelfRevocation
    │   └── WebhookDisabled
    ├── IdempotencyMismatch   an Idempotency-Key reused with another request
    ├── RateLimited           the API key is over its rate limit (`retry_after` seconds)
    └── StoreUnavailable      the database cannot be reached right now

None of them knows about HTTP: the engine and the CLI raise and catch them too.
"""

from __future__ import annotations


class LoopLlamaError(Exception):
    """Base of every error this package raises on purpose."""

    message = "LoopLlama error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class NotFound(LoopLlamaError):
    message = "Not found"


class VersionNotFound(NotFound):
    message = "Version not found"


class InvalidRequest(LoopLlamaError):
    message = "Invalid request"


class Unauthenticated(LoopLlamaError):
    message = "Invalid API key"


class Conflict(LoopLlamaError):
    message = "Conflict"


class WorkflowPaused(Conflict):
    message = "Workflow is paused"


class WorkflowDeleted(Conflict):
    message = "Workflow has been deleted"


class RunNotWaiting(Conflict):
    message = "Run is not waiting for input"


class SelfRevocation(Conflict):
    message = "A key cannot revoke itself"


class RunFinished(Conflict):
    message = "Run has already finished"


class RunNotRetryable(Conflict):
    message = "Run is not failed or cancelled"


class Forbidden(LoopLlamaError):
    message = "Forbidden"


class PermissionDenied(Forbidden):
    message = "Insufficient permissions"


class WorkflowLocked(Forbidden):
    message = "Workflow is locked"


class IdempotencyMismatch(LoopLlamaError):
    message = "Idempotency-Key was already used with a different request"


class WebhookDisabled(Conflict):
    message = "Webhook endpoint is disabled"


class StoreUnavailable(LoopLlamaError):
    message = "Service temporarily unavailable"


class RateLimited(LoopLlamaError):
    message = "Rate limit exceeded"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after
