"""Per-key rate limits (EXTENSIONS part 9): all requests, and run triggers apart.

Counted with the `limits` package's sliding-window counter (two counters per key and window;
the moving window keeps one entry per request, which a 50/second limit makes 50 list entries
to trim on every hit). In memory by default, per process; with `LOOPLLAMA_REDIS_URL` in Redis,
so every API process shares the counts.

A limiter outage must not become an API outage: when Redis fails (down, slow: 250 ms at most),
the request is counted in this process's memory instead, the failure is logged once, and Redis
is tried again after `REDIS_RETRY_SECONDS`.

Called once per authenticated request from the authentication dependency (api/deps.py), after
the 401 checks. The answer's `RateLimit-Policy` and `RateLimit` headers (IETF httpapi
RateLimit header fields, draft 9+: structured fields, one named policy per limit) are put on
`request.state` and added to every response by `RateLimitHeaders`, errors included.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limits import RateLimitItem, parse
from loopllama.rates import parse_rate
from loopllama.settings import LimitSettings

log = logging.getLogger("loopllama.api")

REDIS_RETRY_SECONDS = 30.0
REDIS_TIMEOUT = 0.25


@dataclass(frozen=True, slots=True)
class _Policy:
    name: str  # "requests" or "runs"
    item: RateLimitItem
    header: str  # its RateLimit-Policy entry

    @classmethod
    def of(cls, name: str, rate: str) -> _Policy:
        parsed = parse_rate(rate)
        item = parse(str(parsed))
        return cls(name, item, f'"{name}";q={parsed.amount};w={parsed.seconds}')


class RateLimiter:
    def __init__(self, settings: LimitSettings) -> None:
        self._requests = _Policy.of("requests", settings.rate_limit)
        self._runs = _Policy.of("runs", settings.run_rate_limit)
        self._per_key: dict[str, _Policy] = {}  # a key's own limit, by its text
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._redis: SlidingWindowCounterRateLimiter | None = None
        self._redis_storage: Storage | None = None
        self._redis_down_until = 0.0
        self._redis_logged = False
        if settings.redis_url:
            self._redis_storage = RedisStorage(
                "async+" + settings.redis_url.removeprefix("async+"),
                implementation="redispy",
                socket_connect_timeout=REDIS_TIMEOUT,
                socket_timeout=REDIS_TIMEOUT,
            )
            self._redis = SlidingWindowCounterRateLimiter(self._redis_storage)

    @property
    def shared(self) -> bool:
        """True while counts go to Redis (False: per process)."""
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    async def admit(
        self, key_id: str, key_rate: str | None, *, trigger: bool
    ) -> tuple[list[tuple[str, str]], int | None]:
        """Count one request of key `key_id`: its rate-limit headers, and the seconds to wait
        when a limit refuses it (None: admitted). A refused request counts against no
        further limit (a trigger over the request limit does not use a run slot)."""
        policies = [self._policy(key_rate)]
        if trigger:
            policies.append(self._runs)
        states = []
        refused: int | None = None
        for policy in policies:
            allowed, remaining, reset = await self._hit(policy, key_id)
            states.append(f'"{policy.name}";r={remaining};t={reset}')
            if not allowed:
                refused = reset
                break
        headers = [
            ("RateLimit-Policy", ", ".join(p.header for p in policies)),
            ("RateLimit", ", ".join(states)),
        ]
        return headers, refused

    def _policy(self, key_rate: str | None) -> _Policy:
        if key_rate is None:
            return self._requests
        policy = self._per_key.get(key_rate)
        if policy is None:
            try:
                policy = _Policy.of("requests", key_rate)
            except ValueError:  # stored by an older CLI? the server's limit applies
                policy = self._requests
            self._per_key[key_rate] = policy
        return policy

    async def _hit(self, policy: _Policy, key_id: str) -> tuple[bool, int, int]:
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                counted = await self._count(self._redis, policy, key_id)
            except Exception as error:  # any failure of the limiter's store: count locally
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                if not self._redis_logged:
                    self._redis_logged = True
                    log.warning(
                        "rate limits: Redis unreachable (%s); counting per process until it "
                        "answers again",
                        error or type(error).__name__,
                    )
            else:
                if self._redis_logged:
                    self._redis_logged = False
                    log.info("rate limits: Redis answers again; counts are shared")
                return counted
        return await self._count(self._memory, policy, key_id)

    @staticmethod
    async def _count(
        limiter: SlidingWindowCounterRateLimiter, policy: _Policy, key_id: str
    ) -> tuple[bool, int, int]:
        allowed = await limiter.hit(policy.item, policy.name, key_id)
        stats = await limiter.get_window_stats(policy.item, policy.name, key_id)
        wait = stats.reset_time - time.time()
        # Whole seconds, at least 1 when refused (Retry-After), 0 allowed in RateLimit's t.
        reset = max(1, math.ceil(wait)) if not allowed else max(0, math.ceil(wait))
        return allowed, stats.remaining, reset

    async def aclose(self) -> None:
        storage: Any = self._redis_storage
        client = getattr(getattr(storage, "bridge", None), "storage", None)  # redis.asyncio.Redis
        if client is not None:
            with contextlib.suppress(Exception):  # closing a dead connection
                await client.aclose(close_connection_pool=True)


class RateLimitHeaders:
    """Adds the headers `RateLimiter.admit` left on the request to its response (any status)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    # Not `async` (see PathGuard): it returns the app's awaitable rather than awaiting it.
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                extra = state.get("rate_limit_headers")
                if extra:
                    names = {name.lower().encode() for name, _ in extra}
                    message["headers"] = [
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() not in names
                    ] + [(name.encode(), value.encode()) for name, value in extra]
            await send(message)

        return self.app(scope, receive, send_with_headers)
