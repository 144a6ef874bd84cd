"""Dollars for a model call: the `genai-prices` table (offline data shipped in the package),
overridden per model by the operator's `LOOPLLAMA_PRICES_FILE`; the local model costs 0.

Tokens are priced as the provider bills them: cache reads and cache writes at their own rates
(Anthropic reports them beside `input_tokens`; OpenAI's cached tokens are part of
`prompt_tokens`, and the adapters normalize both to "uncached input + cache read + cache
write"). A model the table does not know costs `None`, never a guess.

genai-prices' own `calc_price` takes about 0.4 ms (it resolves units on every call); the four
per-million rates of a model are looked up once here and multiplied, unless the model has
tiered prices (then the package computes each call).

The prices file (YAML or JSON), dollars per million tokens, keyed by the model name a
workflow uses (`claude-x`, `openai/my-finetune`):

    models:
      openai/my-finetune: {input: 3.0, output: 12.0, cache_read: 0.75}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from loopllama.providers.routing import UnknownModel, route_model

log = logging.getLogger(__name__)

_RATES = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True, slots=True)
class CallUsage:
    """What one model call used. `tokens_in` excludes the cached tokens."""

    tokens_in: int
    tokens_out: int
    cache_read: int = 0
    cache_write: int = 0


@dataclass(frozen=True, slots=True)
class Rates:
    """Dollars per million tokens."""

    input: float
    output: float
    cache_read: float | None = None  # None: billed as input
    cache_write: float | None = None

    def cost(self, usage: CallUsage) -> float:
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        return (
            usage.tokens_in * self.input
            + usage.tokens_out * self.output
            + usage.cache_read * read
            + usage.cache_write * write
        ) / 1_000_000


class PricesFileError(ValueError):
    """LOOPLLAMA_PRICES_FILE cannot be used (the message says why)."""


def load_prices_file(path: str | Path) -> dict[str, Rates]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PricesFileError(f"cannot read prices file {path}: {error}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise PricesFileError(f"prices file {path}: expected a 'models' mapping")
    table: dict[str, Rates] = {}
    for name, prices in models.items():
        if not isinstance(prices, dict) or not {"input", "output"} <= prices.keys():
            raise PricesFileError(f"prices file {path}: model {name!r} needs input and output")
        unknown = prices.keys() - set(_RATES)
        if unknown:
            raise PricesFileError(
                f"prices file {path}: model {name!r}: unknown key(s) {', '.join(sorted(unknown))}"
            )
        values = {key: prices.get(key) for key in _RATES}
        for key, value in values.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise PricesFileError(
                    f"prices file {path}: model {name!r}: {key} must be a number >= 0"
                )
        table[str(name)] = Rates(**{k: None if v is None else float(v) for k, v in values.items()})
    return table


class PriceTable:
    """`cost(model, usage)` in dollars, or None when the model's price is unknown."""

    def __init__(
        self, overrides: dict[str, Rates] | None = None, extra_providers: tuple[str, ...] = ()
    ) -> None:
        self._overrides = overrides or {}
        self._extra = extra_providers
        self._known: dict[str, Rates | Any | None] = {}

    @classmethod
    def from_file(cls, path: str | None, extra_providers: tuple[str, ...] = ()) -> PriceTable:
        return cls(load_prices_file(path) if path else None, extra_providers)

    def preload(self) -> None:
        """Load the package's price data (about a second; blocking: call it in a thread at
        startup, so the first model call of a run does not stall the event loop)."""
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()

    def cost(self, model: str, usage: CallUsage) -> float | None:
        try:
            rates = self._known[model]
        except KeyError:
            rates = self._known[model] = self._lookup(model)
        if rates is None:
            return None
        if isinstance(rates, Rates):
            return rates.cost(usage)
        return _tiered_cost(rates, usage)

    def _lookup(self, model: str) -> Rates | Any | None:
        if model in self._overrides:
            return self._overrides[model]
        try:
            route = route_model(model, extra_providers=self._extra)
        except UnknownModel:
            return None
        qualified = f"{route.provider}/{route.model}"
        if qualified in self._overrides:
            return self._overrides[qualified]
        if route.model in self._overrides:
            return self._overrides[route.model]
        if route.provider == "local":
            return Rates(0.0, 0.0)
        if route.provider not in ("anthropic", "openai"):
            return None
        return _genai_rates(route.model, route.provider)


def _genai_rates(model: str, provider: str) -> Rates | Any | None:
    from genai_prices import Usage, calc_price  # 40 ms of data: loaded on first use

    try:
        found = calc_price(Usage(input_tokens=0), model, provider_id=provider).model_price
    except LookupError:
        log.info("no price known for %s model %r: its cost is reported as null", provider, model)
        return None
    values = {
        "input": found.input_mtok,
        "output": found.output_mtok,
        "cache_read": found.cache_read_mtok,
        "cache_write": found.cache_write_mtok,
    }
    if all(value is None or isinstance(value, Decimal) for value in values.values()):
        return Rates(**{k: None if v is None else float(v) for k, v in values.items()})
    return found  # tiered: priced by the package on each call


def _tiered_cost(model_price: Any, usage: CallUsage) -> float:
    from genai_prices import Usage

    priced = model_price.calc_price(
        Usage(
            # genai-prices counts cached tokens inside input_tokens.
            input_tokens=usage.tokens_in + usage.cache_read + usage.cache_write,
            output_tokens=usage.tokens_out,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
        )
    )
    return float(priced["total_price"])
