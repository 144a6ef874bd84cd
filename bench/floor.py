"""The floor of bench.e2e: the two routes it drives, with nothing durable behind them.

    .venv/bin/python -m bench.floor --port P --provider URL [--client sdk|raw]

`POST /v1/workflows/{id}/runs` keeps the run in a dict, starts a task and answers 202;
`GET /v1/runs/{id}` answers the run as it is. The task runs the planner -> writer crew: each
agent's prompt is built the way LoopLlama builds it (`step_input`), one Messages API call each.
No database, no authentication, no events, no retries: what is left is what any server of
these two routes pays, so bench.e2e reports LoopLlama's figures as ratios to it.

`--client sdk` (default) makes the model calls through the official `anthropic` SDK on its
aiohttp transport, as LoopLlama does with LOOPLLAMA_PROVIDER_HTTP_TRANSPORT=aiohttp (about
0.8 ms of CPU per call, accepted by the project); `--client raw` posts the same Messages JSON
with plain aiohttp, the floor without the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from loopllama.engine.prompts import DEFAULT_CREW, step_input

MODEL = "claude-bench"
MAX_TOKENS = 1024  # LoopLlama's default LOOPLLAMA_MODEL_MAX_TOKENS
API_KEY = "sk-ant-bench"


class SdkClient:
    """`messages.create` on the SDK's aiohttp transport, built as providers/transport.py does."""

    def __init__(self, provider_url: str) -> None:
        import anthropic
        import httpx2

        limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
        self._client = anthropic.AsyncAnthropic(
            api_key=API_KEY,
            base_url=provider_url,
            timeout=60.0,
            max_retries=0,
            http_client=anthropic.DefaultAioHttpClient(limits=limits, timeout=60.0),
        )

    async def complete(self, system: str, user: str) -> str:
        message = await self._client.messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            system=system,
            messages=[{"role": "user", "content": [{"type": "text", "text": user}]}],
        )
        return "".join(block.text for block in message.content if block.type == "text")

    async def aclose(self) -> None:
        await self._client.close()


class RawClient:
    """The same request as plain JSON over one aiohttp session: no SDK."""

    def __init__(self, provider_url: str) -> None:
        self._url = provider_url.rstrip("/") + "/v1/messages"
        headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
        connector = aiohttp.TCPConnector(limit=1000)
        self._session = aiohttp.ClientSession(headers=headers, connector=connector)

    async def complete(self, system: str, user: str) -> str:
        body = {
            "model": MODEL,
            "max_tokens": MAX_TOKENS,
            "system": system,
            "messages": [{"role": "user", "content": [{"type": "text", "text": user}]}],
        }
        async with self._session.post(self._url, json=body) as response:
            response.raise_for_status()
            message = await response.json()
        return "".join(b["text"] for b in message["content"] if b["type"] == "text")

    async def aclose(self) -> None:
        await self._session.close()


class Floor:
    def __init__(self, client: SdkClient | RawClient) -> None:
        self.client = client
        self.runs: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected

    async def trigger(self, request: web.Request) -> web.Response:
        body = await request.json()
        run = {
            "id": uuid.uuid4().hex,
            "workflow_id": request.match_info["workflow_id"],
            "status": "queued",
            "input": body["input"],
            "output": None,
            "error": None,
        }
        self.runs[run["id"]] = run
        task = asyncio.create_task(self.execute(run))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"data": run}, status=202)

    async def get_run(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["run_id"])
        if run is None:
            return web.json_response({"error": {"message": "Run not found"}}, status=404)
        return web.json_response({"data": run})

    async def execute(self, run: dict[str, Any]) -> None:
        run["status"] = "running"
        prior: list[tuple[str, str]] = []
        try:
            for agent in DEFAULT_CREW:
                user = step_input(run["input"], prior)
                prior.append(
                    (agent["role"], await self.client.complete(agent["systemPrompt"], user))
                )
        except Exception as exc:  # reported on the run, as a server would
            run["status"], run["error"] = "failed", repr(exc)
            return
        run["status"], run["output"] = "completed", prior[-1][1]


async def serve(port: int, provider_url: str, client_kind: str) -> None:
    client = SdkClient(provider_url) if client_kind == "sdk" else RawClient(provider_url)
    floor = Floor(client)
    app = web.Application()
    app.router.add_post("/v1/workflows/{workflow_id}/runs", floor.trigger)
    app.router.add_get("/v1/runs/{run_id}", floor.get_run)
    app.router.add_get("/healthz", lambda _: web.json_response({"status": "ok"}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # uvicorn's backlog, so a burst of connections is not dropped (and retried 1 s later).
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--provider", required=True, help="base URL of the Anthropic API")
    parser.add_argument("--client", choices=("sdk", "raw"), default="sdk")
    args = parser.parse_args()
    import uvloop  # the loop `loopllama serve` and `worker` run on

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.port, args.provider, args.client))


if __name__ == "__main__":
    main()
