"""A real webhook receiver on 127.0.0.1 that checks every signature with `standardwebhooks`,
and helpers to create endpoints and wait for deliveries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, get_args

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from loopllama.schemas.runs import EventType
from tests.helpers import free_port

ALL_TYPES = list(get_args(EventType))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_with: str | None  # the secret whose signature matched, None if none did

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers 500 to the first `fail_first` requests (then 200), or `status` to all."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.fail_first = 0
        self.fail_each_first = False  # 500 to the first attempt of every webhook-id
        self.status = 200
        self.delay = 0.0
        self.answer = b"ok"
        self.answer_headers: list[tuple[bytes, bytes]] = []
        self.url = ""
        self._arrived = asyncio.Event()

    def verified(self) -> list[Received]:
        assert all(r.verified_with for r in self.received), [
            (r.id, r.headers) for r in self.received if not r.verified_with
        ]
        return self.received

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.received)} of {count} deliveries arrived")
            self._arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.2))
        return self.received

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        verified_with = None
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified_with = secret
            break
        self.received.append(Received(scope["path"], headers, body, verified_with))
        self._arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.status
        if self.fail_each_first and [r.id for r in self.received].count(headers["webhook-id"]) == 1:
            status = 500
        elif self.fail_first > 0:
            self.fail_first -= 1
            status = 500
        await send(
            {"type": "http.response.start", "status": status, "headers": self.answer_headers}
        )
        await send({"type": "http.response.body", "body": self.answer})


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    app.url = f"http://127.0.0.1:{port}"
    try:
        yield app
    finally:
        server.should_exit = True
        await task


async def create_endpoint(
    client: httpx.AsyncClient, receiver: Receiver, events=None, **fields: Any
) -> dict[str, Any]:
    body = {"url": receiver.url + "/hook", "events": events or ALL_TYPES, **fields}
    response = await client.post("/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    endpoint = response.json()["data"]
    receiver.secrets.append(endpoint["secret"])
    return endpoint


async def deliveries(client: httpx.AsyncClient, endpoint_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def wait_deliveries(
    client: httpx.AsyncClient, endpoint_id: str, check: Any, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Poll the delivery log until `check(deliveries)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await deliveries(client, endpoint_id)
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries never satisfied the check: {found}")
        await asyncio.sleep(0.05)
