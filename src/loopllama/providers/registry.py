"""The provider registry: built-in providers and test fakes register the same way.

Providers are created on first use (the local model loads only when a step needs it) and
closed with the registry. A provider without credentials is still "known" (its models route)
but `get` raises `ProviderNotConfigured` whose reason says which variable to set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from loopllama.providers.base import Provider, ProviderCapabilities, ProviderNotConfigured
from loopllama.providers.transport import sdk_http_client
from loopllama.settings import Settings

Factory = Callable[[Settings], Provider]


def _anthropic(settings: Settings) -> Provider:
    if not settings.providers.anthropic_configured:
        raise ProviderNotConfigured(
            "no API key configured for provider anthropic: set ANTHROPIC_API_KEY"
        )
    import anthropic

    from loopllama.providers.anthropic import AnthropicProvider

    client = sdk_http_client(anthropic, settings.providers, settings.models)
    return _Owning(
        AnthropicProvider(settings.providers, settings.models, http_client=client), client
    )


def _openai(settings: Settings) -> Provider:
    if not settings.providers.openai_configured:
        raise ProviderNotConfigured(
            "no API key configured for provider openai: set OPENAI_API_KEY "
            "(or OPENAI_BASE_URL for an OpenAI-compatible server)"
        )
    import openai

    from loopllama.providers.openai import OpenAIProvider

    client = sdk_http_client(openai, settings.providers, settings.models)
    return _Owning(OpenAIProvider(settings.providers, settings.models, http_client=client), client)


class _Owning:
    """A provider together with the HTTP client made for it, closed with it."""

    def __init__(self, provider: Provider, client: Any) -> None:
        self._provider = provider
        self._client = client
        self.name = provider.name
        self.supports_tools = provider.supports_tools
        self.streams = getattr(provider, "streams", False)
        self.complete = provider.complete

    async def aclose(self) -> None:
        await self._provider.aclose()
        await self._client.aclose()


def _local(settings: Settings) -> Provider:
    from loopllama.providers.local import LocalProvider

    return LocalProvider(settings.providers, settings.models)


BUILTIN_FACTORIES: dict[str, Factory] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "local": _local,
}


class ProviderRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._factories: dict[str, Factory] = dict(BUILTIN_FACTORIES)
        self._instances: dict[str, Provider] = {}
        self._lock = asyncio.Lock()

    def register(self, name: str, provider: Provider) -> None:
        """Install a ready provider under `name` (plugins and test fakes)."""
        self._instances[name] = provider
        self._factories.setdefault(name, lambda _settings: provider)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    @property
    def extra_names(self) -> tuple[str, ...]:
        return tuple(n for n in self._factories if n not in BUILTIN_FACTORIES)

    def get(self, name: str) -> Provider:
        """The provider called `name`. Raises `ProviderNotConfigured` without credentials."""
        provider = self._instances.get(name)
        if provider is None:
            provider = self._factories[name](self._settings)
            self._instances[name] = provider
        return provider

    def capabilities(self) -> list[ProviderCapabilities]:
        """What each built-in provider can do here, for the startup log."""
        p = self._settings.providers
        return [
            ProviderCapabilities(
                "anthropic",
                p.anthropic_configured,
                True,
                p.anthropic_base_url or "api.anthropic.com",
            ),
            ProviderCapabilities(
                "openai", p.openai_configured, True, p.openai_base_url or "api.openai.com"
            ),
            ProviderCapabilities("local", True, False, "SmolLM2-135M-Instruct in process"),
        ]

    def supports_tools(self, name: str) -> bool:
        """Whether `name` can call tools, without creating it (no model load, no client)."""
        if name in self._instances:
            return self._instances[name].supports_tools
        return name != "local"

    async def aclose(self) -> None:
        for provider in self._instances.values():
            await provider.aclose()
        self._instances.clear()
