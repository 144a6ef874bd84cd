"""The API's resources as client attributes: `client.workflows`, `client.runs`,
`client.usage`."""

from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.usage import AsyncUsage, Usage
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows

__all__ = ["AsyncRuns", "AsyncUsage", "AsyncWorkflows", "Runs", "Usage", "Workflows"]
