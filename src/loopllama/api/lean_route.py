"""`LeanRoute`: the route class of the hottest routes (a poll, a trigger, an event stream).

FastAPI serves a request through a wrapper that opens three exit stacks, wraps the handler
for exceptions and solves the dependency tree, then keeps all of it until the response ends.
That costs about a tenth of a poll's CPU, and for an event stream it is held for hours: about
5 KiB of an idle stream's 21. A `LeanRoute` calls its endpoint directly instead, with what it
declares among its path parameters, `request`, `account` and `services`, after running the
route's own `requires(...)` check (401, then 403) as FastAPI would have.

Everything else is unchanged: FastAPI reads the declaration for the OpenAPI document; the
app's middleware wraps the route as before; an error raised here reaches the app's handlers
and answers in the API's one error shape; a method the route does not take gets FastAPI's 405.
A route that needs more of FastAPI (a body model, other dependencies) stays an `APIRoute`: the
constructor refuses what it would not pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from loopllama.api.deps import ScopeCheck

_PROVIDED = frozenset({"request", "account", "services"})


class LeanRoute(APIRoute):
    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        checks = [
            dep.dependency for dep in self.dependencies if isinstance(dep.dependency, ScopeCheck)
        ]
        if len(checks) != 1:
            raise TypeError(f"{path}: a LeanRoute declares exactly one requires(...)")
        self._check: ScopeCheck = checks[0]
        self._wants = frozenset(inspect.signature(endpoint).parameters)
        unknown = self._wants - _PROVIDED - set(self.param_convertors)
        if unknown:
            raise TypeError(f"{path}: a LeanRoute cannot provide {sorted(unknown)}")

    def handle(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["method"] not in self.methods:
            return super().handle(scope, receive, send)  # 405, as FastAPI answers it
        return self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        account = await self._check(request)
        arguments: dict[str, Any] = dict(scope["path_params"])
        if "request" in self._wants:
            arguments["request"] = request
        if "account" in self._wants:
            arguments["account"] = account
        if "services" in self._wants:
            arguments["services"] = request.app.state.services
        response = await self.endpoint(**arguments)
        await response(scope, receive, send)
