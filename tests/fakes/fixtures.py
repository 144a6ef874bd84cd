"""Pytest fixtures over the test fakes; import them explicitly where needed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.provider_server import FakeProviderServer


@pytest.fixture
def provider_server() -> Iterator[FakeProviderServer]:
    """A started `FakeProviderServer` (Anthropic base_url: `.url`, OpenAI: `.openai_url`)."""
    with FakeProviderServer() as server:
        yield server
