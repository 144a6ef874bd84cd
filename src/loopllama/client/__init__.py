"""The LoopLlama Python SDK: `LoopLlama` (sync) and `AsyncLoopLlama` over one sans-I/O core.

Depends on httpx only; it never imports the server.

    _core.py        operations and plans (retries, respond reconciliation, polling), written once
    _retry.py       how a failure is classified, and the backoff
    _client.py      the two clients and their plan drivers
    resources/      client.workflows, client.runs, client.keys, client.webhooks
    types.py        Workflow, Agent, Run, Step, Pending, ... (tolerant of newer servers)
    _exceptions.py  one exception class per status
"""

from loopllama.client._client import AsyncLoopLlama, LoopLlama
from loopllama.client._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    LoopLlamaError,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    UnprocessableEntityError,
)
from loopllama.client._version import __version__
from loopllama.client.types import (
    NOT_GIVEN,
    Agent,
    ApiKey,
    HumanInTheLoop,
    NotGiven,
    Pending,
    RespondResult,
    Run,
    RunEvent,
    RunList,
    Step,
    StepDelta,
    Tool,
    ToolCall,
    UsageRow,
    WebhookDelivery,
    WebhookEndpoint,
    Workflow,
    WorkflowPage,
    WorkflowVersion,
)

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
    "ApiKey",
    "AsyncLoopLlama",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "HumanInTheLoop",
    "InternalServerError",
    "LoopLlama",
    "LoopLlamaError",
    "NotFoundError",
    "NotGiven",
    "Pending",
    "PermissionDeniedError",
    "PollTimeoutError",
    "RateLimitError",
    "RespondResult",
    "Run",
    "RunEvent",
    "RunList",
    "Step",
    "StepDelta",
    "Tool",
    "ToolCall",
    "UnprocessableEntityError",
    "UsageRow",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workflow",
    "WorkflowPage",
    "WorkflowVersion",
    "__version__",
]
