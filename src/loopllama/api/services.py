"""Everything the routes need, built once per app in the lifespan (nothing at import time)."""

from __future__ import annotations

from dataclasses import dataclass

from loopllama.api.ratelimit import RateLimiter
from loopllama.engine.dispatcher import Dispatcher
from loopllama.engine.runner import Runner
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import Settings
from loopllama.store.db import Database


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    providers: ProviderRegistry
    runner: Runner
    dispatcher: Dispatcher
    default_model: str
    limiter: RateLimiter
