"""The API's resources as client attributes: `client.workflows`, `.runs`, `.keys`,
`.webhooks`."""

from loopllama.client.resources.keys import AsyncKeys, Keys
from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.webhooks import AsyncWebhooks, Webhooks
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows

__all__ = [
    "AsyncKeys",
    "AsyncRuns",
    "AsyncWebhooks",
    "AsyncWorkflows",
    "Keys",
    "Runs",
    "Webhooks",
    "Workflows",
]
