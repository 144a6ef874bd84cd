"""The API's resources as client attributes: `client.workflows`, `client.runs`, `client.keys`."""

from loopllama.client.resources.keys import AsyncKeys, Keys
from loopllama.client.resources.runs import AsyncRuns, Runs
from loopllama.client.resources.workflows import AsyncWorkflows, Workflows

__all__ = ["AsyncKeys", "AsyncRuns", "AsyncWorkflows", "Keys", "Runs", "Workflows"]
