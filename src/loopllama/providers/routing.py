"""Model names to providers: `provider/model` explicitly, or a bare name by its prefix.

Pure functions, no I/O: the API uses them to refuse a model no provider can serve (400 at create
time), the engine to pick the provider of each step.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopllama.settings import ProviderSettings

PROVIDERS = ("anthropic", "openai", "local")

# Bare model names are routed by prefix (EXTENSIONS part 2).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("claude-", "anthropic"),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
)

DOCUMENTED_DEFAULT_MODEL = "claude-sonnet-4-6"
OPENAI_DEFAULT_MODEL = "gpt-4.1"
LOCAL_DEFAULT_MODEL = "local/smollm2"


@dataclass(frozen=True, slots=True)
class Route:
    provider: str  # one of PROVIDERS (or "fake" in tests)
    model: str  # the name the provider understands


class UnknownModel(ValueError):
    """No provider can serve this model name."""


def route_model(name: str, *, extra_providers: tuple[str, ...] = ()) -> Route:
    """Which provider serves `name`, and under which name. Raises `UnknownModel`."""
    prefix, slash, rest = name.partition("/")
    if slash:
        if prefix in PROVIDERS or prefix in extra_providers:
            if not rest:
                raise UnknownModel(name)
            return Route(prefix, rest)
        raise UnknownModel(name)
    for start, provider in _PREFIXES:
        if name.startswith(start):
            return Route(provider, name)
    raise UnknownModel(name)


def unknown_model_message(name: str) -> str:
    return (
        f"Unknown model '{name}': name a provider (anthropic/..., openai/..., local/smollm2) "
        "or use a name starting with claude-, gpt-, chatgpt-, o1, o3 or o4"
    )


def default_model(configured: str | None, providers: ProviderSettings) -> str:
    """The model for workflows that name none: the operator's choice, else the best configured."""
    if configured:
        return configured
    if providers.anthropic_configured:
        return DOCUMENTED_DEFAULT_MODEL
    if providers.openai_configured:
        return OPENAI_DEFAULT_MODEL
    return LOCAL_DEFAULT_MODEL
