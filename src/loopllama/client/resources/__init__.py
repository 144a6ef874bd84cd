"""The API's resources as client attributes: `client.workflows`, `.runs`, `.webhooks`."""

from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.webhooks import AsyncWebhooks, Webhooks
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows

__all__ = ["AsyncRuns", "AsyncWebhooks", "AsyncWorkflows", "Runs", "Webhooks", "Workflows"]
