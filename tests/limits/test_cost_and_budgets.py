"""Dollar cost per step and run from the real price table, operator overrides, and budgets in
tokens and dollars, through the API with the real SDKs against the fake provider server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from genai_prices import Usage, calc_price

from loopllama.providers.pricing import CallUsage, PricesFileError, PriceTable, load_prices_file
from loopllama.providers.registry import ProviderRegistry
from tests.fakes.provider_server import text
from tests.helpers import app_client, wait_for_run, with_fake_providers

CLAUDE = "claude-sonnet-4-6"


def claude_price(tokens_in: int, tokens_out: int) -> float:
    """What the genai-prices table says Anthropic bills (independent of our arithmetic)."""
    usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out)
    return float(calc_price(usage, CLAUDE, provider_id="anthropic").total_price)


@pytest.fixture
async def http(
    settings, provider_server, api_key, fake_provider
) -> AsyncIterator[httpx.AsyncClient]:
    configured = with_fake_providers(settings, provider_server)
    registry = ProviderRegistry(configured)
    registry.register("fake", fake_provider)
    async with app_client(configured, api_key, providers=registry) as client:
        yield client


async def run_workflow(http, crew, text_input="go", **fields) -> dict:
    body = {"name": "costly", "model": CLAUDE, "crew": crew, **fields}
    created = await http.post("/v1/workflows", json=body)
    assert created.status_code == 201, created.text
    run = await http.post(
        f"/v1/workflows/{created.json()['data']['id']}/runs", json={"input": text_input}
    )
    # The first Anthropic call of a process imports its SDK: seconds on a busy machine.
    return await wait_for_run(http, run.json()["data"]["id"], ("completed", "failed"), 60)


TWO = [{"role": "a", "systemPrompt": "A."}, {"role": "b", "systemPrompt": "B."}]
THREE = [*TWO, {"role": "c", "systemPrompt": "C."}]


async def test_cost_of_a_claude_run_from_the_real_price_table(http, provider_server):
    provider_server.enqueue(text("one", 1000, 200), text("two", 3000, 500))
    run = await run_workflow(http, TWO)
    assert run["status"] == "completed"
    first, second = run["steps"]
    assert first["cost_usd"] == pytest.approx(claude_price(1000, 200))
    assert second["cost_usd"] == pytest.approx(claude_price(3000, 500))
    assert run["cost_usd"] == pytest.approx(claude_price(1000, 200) + claude_price(3000, 500))
    assert run["cost_usd"] > 0


async def test_unknown_price_is_null_and_a_partial_sum_counts_the_known(http, provider_server):
    crew = [{"role": "a", "systemPrompt": "A.", "model": "fake/private"}, TWO[1]]
    provider_server.enqueue(text("two", 2000, 100))  # the Claude step
    run = await run_workflow(http, crew)
    assert run["status"] == "completed"
    assert run["steps"][0]["cost_usd"] is None
    assert run["steps"][1]["cost_usd"] == pytest.approx(claude_price(2000, 100))
    assert run["cost_usd"] == pytest.approx(claude_price(2000, 100))

    only_unknown = await run_workflow(http, [crew[0]])
    assert only_unknown["steps"][0]["cost_usd"] is None
    assert only_unknown["cost_usd"] is None
    listed = (await http.get(f"/v1/workflows/{only_unknown['workflow_id']}/runs")).json()
    assert listed["data"][0]["cost_usd"] is None


async def test_the_prices_file_overrides_per_model(settings, provider_server, api_key, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n"
        "  openai/my-finetune: {input: 3.0, output: 12.0}\n"
        "  claude-sonnet-4-6: {input: 1.0, output: 1.0}\n"
    )
    configured = with_fake_providers(settings, provider_server)
    configured = configured.model_copy(
        update={"models": configured.models.model_copy(update={"prices_file": str(prices)})}
    )
    async with app_client(configured, api_key) as http:
        provider_server.enqueue(text("x", 1_000_000, 500_000), text("y", 2_000_000, 0))
        crew = [{"role": "a", "systemPrompt": "A.", "model": "openai/my-finetune"}, TWO[1]]
        run = await run_workflow(http, crew)
    assert run["steps"][0]["cost_usd"] == pytest.approx(3.0 + 6.0)
    assert run["steps"][1]["cost_usd"] == pytest.approx(2.0)  # overridden, not the table's
    assert run["cost_usd"] == pytest.approx(11.0)


async def test_a_token_budget_fails_the_run_after_the_call_that_crossed_it(http, provider_server):
    provider_server.enqueue(text("one", 1000, 200), text("two", 1000, 200), text("never"))
    run = await run_workflow(http, THREE, max_tokens=1500)
    assert run["status"] == "failed"
    assert run["error"] == "Step 2 (b) failed: run exceeded its budget of 1500 tokens"
    assert len(provider_server.requests) == 2  # no further model call
    assert run["total_steps"] == 2
    assert (run["tokens_in"], run["tokens_out"]) == (2000, 400)  # the call is recorded
    assert run["steps"][1]["error"] == "run exceeded its budget of 1500 tokens"
    assert run["steps"][1]["tokens_in"] == 1000


async def test_a_dollar_budget_fails_the_run(http, provider_server):
    provider_server.enqueue(text("one", 1000, 200), text("two", 1000, 200), text("never"))
    budget = claude_price(1000, 200) * 1.5  # the second call crosses it
    run = await run_workflow(http, THREE, max_cost_usd=budget)
    assert run["status"] == "failed"
    assert run["error"] == f"Step 2 (b) failed: run exceeded its budget of ${budget:.3f}"
    assert len(provider_server.requests) == 2
    assert run["cost_usd"] == pytest.approx(2 * claude_price(1000, 200))


async def test_a_run_within_its_budgets_completes(http, provider_server):
    provider_server.enqueue(text("one", 100, 10), text("two", 100, 10))
    run = await run_workflow(http, TWO, max_tokens=220, max_cost_usd=1.0)
    assert run["status"] == "completed"  # exactly at the token budget is within it


async def test_budget_fields_are_validated_and_versioned(http):
    bad = await http.post("/v1/workflows", json={"name": "x", "max_cost_usd": 0})
    assert bad.status_code == 400
    assert bad.json() == {"error": "Number must be greater than 0"}
    bad = await http.post("/v1/workflows", json={"name": "x", "max_tokens": "5"})
    assert bad.json() == {"error": "Expected number, received string"}
    created = (await http.post("/v1/workflows", json={"name": "x", "max_tokens": 100})).json()
    workflow = created["data"]
    assert (workflow["max_tokens"], workflow["max_cost_usd"]) == (100, None)
    patched = await http.patch(f"/v1/workflows/{workflow['id']}", json={"max_cost_usd": 2.5})
    assert patched.json()["data"]["version"] == 2
    versions = (await http.get(f"/v1/workflows/{workflow['id']}/versions")).json()["data"]
    assert [(v["max_cost_usd"], v["max_tokens"]) for v in versions] == [(2.5, 100), (None, 100)]


def test_the_local_model_costs_nothing_and_cache_tokens_have_their_rates():
    table = PriceTable()
    assert table.cost("local/smollm2", CallUsage(5000, 5000)) == 0.0
    assert table.cost("fake/anything", CallUsage(10, 10)) is None
    assert table.cost("claude-not-a-real-model-9", CallUsage(10, 10)) is None
    # 1,000 uncached input tokens, 4,000 read from the cache, 2,000 written to it.
    ours = table.cost(CLAUDE, CallUsage(1000, 300, cache_read=4000, cache_write=2000))
    usage = Usage(
        input_tokens=7000, output_tokens=300, cache_read_tokens=4000, cache_write_tokens=2000
    )
    theirs = float(calc_price(usage, CLAUDE, provider_id="anthropic").total_price)
    assert ours == pytest.approx(theirs)
    assert ours < claude_price(7000, 300)  # cache reads are cheaper than input


def test_a_bad_prices_file_says_what_is_wrong(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"models": {"m": {"input": 1}}}')
    with pytest.raises(PricesFileError, match="needs input and output"):
        load_prices_file(path)
    path.write_text('{"models": {"m": {"input": 1, "output": -2}}}')
    with pytest.raises(PricesFileError, match="output must be a number >= 0"):
        load_prices_file(path)
    path.write_text('{"models": {"m": {"input": 1, "output": 2, "cache": 1}}}')
    with pytest.raises(PricesFileError, match="unknown key"):
        load_prices_file(path)
