"""Everything the routes need, built once per app in the lifespan (nothing at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loopllama.api.key_usage import KeyUsage
from loopllama.api.ratelimit import RateLimiter
from loopllama.engine.dispatcher import Dispatcher
from loopllama.engine.notify import Hub
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
    hub: Hub  # live events and deltas of runs, for streams (engine/notify.py)
    limiter: RateLimiter
    key_usage: KeyUsage = field(default_factory=KeyUsage)
