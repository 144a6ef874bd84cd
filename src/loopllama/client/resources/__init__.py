"""The API's resources as client attributes: `client.workflows`, `client.runs`."""

from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows

__all__ = ["AsyncRuns", "AsyncWorkflows", "Runs", "Workflows"]
