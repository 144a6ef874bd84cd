"""Runs on the real Anthropic and OpenAI SDKs against a fake provider server on loopback:
the engine's retries, the SDKs' timeouts and the wire formats, end to end through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from loopllama.settings import ModelSettings, ProviderSettings
from tests.fakes.provider_server import error, overloaded, rate_limited, stall, text
from tests.helpers import app_client, wait_for_run, with_fake_providers


@pytest.fixture
async def http(settings, provider_server, api_key) -> AsyncIterator[httpx.AsyncClient]:
    configured = with_fake_providers(settings, provider_server).model_copy(
        update={
            "models": ModelSettings(
                timeout=0.5, max_retries=2, retry_base_delay=0.01, retry_max_delay=0.05
            )
        }
    )
    async with app_client(configured, api_key) as client:
        yield client


async def run_one(http, model: str, text_input: str = "hello") -> dict:
    workflow = (
        await http.post(
            "/v1/workflows",
            json={
                "name": "p",
                "model": model,
                "crew": [{"role": "solo", "systemPrompt": "Be brief."}],
            },
        )
    ).json()["data"]
    run = (
        await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": text_input})
    ).json()["data"]
    return await wait_for_run(http, run["id"], ("completed", "failed"))


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "openai/gpt-4.1"])
async def test_transient_failures_are_retried_until_success(http, provider_server, model):
    provider_server.enqueue(overloaded(), rate_limited(retry_after=0), text("done", 7, 3))
    run = await run_one(http, model)
    assert run["status"] == "completed"
    assert run["output"] == "done"
    assert (run["tokens_in"], run["tokens_out"]) == (7, 3)
    assert len(provider_server.requests) == 3
    request = provider_server.requests[-1]
    assert request.system == "Be brief."
    assert request.last_user_text == "hello"


async def test_overloaded_until_the_retries_run_out(http, provider_server):
    provider_server.enqueue(overloaded(), overloaded(), overloaded())
    run = await run_one(http, "claude-sonnet-4-6")
    assert run["status"] == "failed"
    assert run["error"] == "Step 1 (solo) failed: model provider returned 529: overloaded"
    assert len(provider_server.requests) == 3  # 1 + max_retries


async def test_timeouts_fail_the_step_after_retries(http, provider_server):
    provider_server.enqueue(stall(3), stall(3), stall(3))
    run = await run_one(http, "gpt-4.1")
    assert run["error"] == "Step 1 (solo) failed: model request timed out"
    assert len(provider_server.requests) == 3


async def test_client_errors_are_not_retried(http, provider_server):
    provider_server.enqueue(error(401, "invalid x-api-key"))
    run = await run_one(http, "claude-sonnet-4-6")
    assert run["error"] == "Step 1 (solo) failed: model provider returned 401: invalid x-api-key"
    assert len(provider_server.requests) == 1


async def test_unreachable_provider(settings, api_key):
    from tests.helpers import free_port

    configured = settings.model_copy(
        update={
            "providers": ProviderSettings(
                anthropic_api_key="k", anthropic_base_url=f"http://127.0.0.1:{free_port()}"
            ),
            "models": ModelSettings(max_retries=1, retry_base_delay=0.01),
        }
    )
    async with app_client(configured, api_key) as client:
        run = await run_one(client, "claude-sonnet-4-6")
    assert run["status"] == "failed"
    assert run["error"].startswith("Step 1 (solo) failed: could not reach model provider anthropic")


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "gpt-4.1"])
async def test_the_aiohttp_transport_carries_runs_too(settings, provider_server, api_key, model):
    configured = with_fake_providers(
        settings, provider_server, http_transport="aiohttp", max_connections=50
    )
    provider_server.enqueue(overloaded(), text("over aiohttp", 4, 2))
    async with app_client(configured, api_key) as client:
        run = await run_one(client, model)
    assert (run["status"], run["output"]) == ("completed", "over aiohttp")
    assert len(provider_server.requests) == 2
