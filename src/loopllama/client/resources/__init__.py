"""The API's resources as client attributes: `client.workflows`, `.runs`, `.keys`,
`.webhooks`, `.usage`."""

from loopllama.client.resources.keys import AsyncKeys, Keys
from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.usage import AsyncUsage, Usage
from loopllama.client.resources.webhooks import AsyncWebhooks, Webhooks
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows

__all__ = [
    "AsyncKeys",
    "AsyncRuns",
    "AsyncUsage",
    "AsyncWebhooks",
    "AsyncWorkflows",
    "Keys",
    "Runs",
    "Usage",
    "Webhooks",
    "Workflows",
]
