"""Domain errors: raised deep inside, mapped to HTTP in one table at the edge (api/errors.py).

    LoopLlamaError
    ├── NotFound              the resource does not exist or another account owns it
    ├── InvalidRequest        the body failed validation (message = the first issue)
    ├── Unauthenticated       missing, malformed, unknown or revoked API key
    ├── Conflict              the resource's state forbids the action
    │   ├── WorkflowPaused
    │   ├── RunNotWaiting
    │   └── WebhookDisabled
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


class InvalidRequest(LoopLlamaError):
    message = "Invalid request"


class Unauthenticated(LoopLlamaError):
    message = "Invalid API key"


class Conflict(LoopLlamaError):
    message = "Conflict"


class WorkflowPaused(Conflict):
    message = "Workflow is paused"


class RunNotWaiting(Conflict):
    message = "Run is not waiting for input"


class WebhookDisabled(Conflict):
    message = "Webhook endpoint is disabled"


class StoreUnavailable(LoopLlamaError):
    message = "Service temporarily unavailable"
