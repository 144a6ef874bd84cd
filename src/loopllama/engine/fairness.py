"""Fair shares of a process's run slots: round-robin across accounts with work waiting, and at
most `per_account` slots held by one account (LOOPLLAMA_MAX_CONCURRENT_RUNS_PER_ACCOUNT).

A plain semaphore serves waiters first come, first served: an account that triggered 10,000
runs a moment before another account's one makes that run wait for all of them. Here each
account has its own queue of waiters, and a freed slot goes to the next account in turn that
has a waiter and is under its cap. Every account with a waiter is served within one round
(at most one slot per other waiting account), so no run waits forever.

The cross-process half, on PostgreSQL, is in the job queue's priorities (migration 0009).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    def __init__(self, total: int, per_account: int | None = None) -> None:
        self._free = total
        self._cap = per_account
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        # When each account was last given a slot: the next slot goes to the waiting account
        # served longest ago (never served: first).
        self._served: dict[str, int] = {}
        self._grants = 0

    def held(self, account: str) -> int:
        return self._held.get(account, 0)

    def at_cap(self, account: str) -> bool:
        return self._cap is not None and self.held(account) >= self._cap

    @asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[None]:
        """A slot for `account` for the duration of the block."""
        await self.acquire(account)
        try:
            yield
        finally:
            self.release(account)

    async def acquire(self, account: str) -> None:
        if not self._waiting and self._free > 0 and not self.at_cap(account):
            self._take(account)  # the common case: nobody waits
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(account, deque()).append(waiter)
        self._grant()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(account)  # granted as it was cancelled: give it back
            else:
                self._forget(account, waiter)
            raise

    def release(self, account: str) -> None:
        self._free += 1
        held = self._held[account] - 1
        if held:
            self._held[account] = held
        else:
            del self._held[account]
            if account not in self._waiting:
                self._served.pop(account, None)  # keeps the table to active accounts
        self._grant()

    def _take(self, account: str) -> None:
        self._free -= 1
        self._held[account] = self._held.get(account, 0) + 1
        self._grants += 1
        self._served[account] = self._grants

    def _grant(self) -> None:
        """Hand free slots to waiters, one account after the other."""
        while self._free > 0 and self._waiting:
            eligible = [a for a in self._waiting if not self.at_cap(a)]
            if not eligible:
                return  # every waiting account is at its cap
            account = min(eligible, key=lambda a: self._served.get(a, 0))
            queue = self._waiting[account]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[account]
            if waiter.cancelled():
                continue
            self._take(account)
            waiter.set_result(None)

    def _forget(self, account: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(account)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._waiting[account]
