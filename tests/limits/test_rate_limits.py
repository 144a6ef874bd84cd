"""Rate limits per API key: all requests and run triggers, in memory or shared through Redis,
with the IETF RateLimit headers on every authenticated answer."""

from __future__ import annotations

import logging

import pytest
import redis

from loopllama.api.app import create_app
from loopllama.providers.registry import ProviderRegistry
from tests.helpers import app_client
from tests.limits.support import (
    REDIS_TEST_URL,
    limited,
    new_key,
    redis_available,
    unique,
)

needs_redis = pytest.mark.skipif(not redis_available(), reason="Redis is not reachable")


@pytest.fixture
def redis_db():
    """This suite's Redis database, emptied before and after."""
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


async def test_over_the_limit_is_429_with_retry_after_and_headers(settings):
    settings = limited(settings, rate_limit="3/hour")
    key = await new_key(settings, unique("acme"))
    async with app_client(settings, key, run_engine=False) as http:
        answers = [await http.get("/v1/workflows") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json() == {"error": "Rate limit exceeded"}
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-policy"] == '"requests";q=3;w=3600'
    assert refused.headers["ratelimit"].startswith('"requests";r=0;t=')
    # Every admitted answer says what is left.
    remaining = [a.headers["ratelimit"].split(";")[1] for a in answers[:3]]
    assert remaining == ["r=2", "r=1", "r=0"]


async def test_headers_on_every_authenticated_answer_errors_included(settings):
    settings = limited(settings, rate_limit="100/minute")
    key = await new_key(settings, unique("acme"))
    async with app_client(settings, key, run_engine=False) as http:
        missing = await http.get("/v1/runs/nope")
        bad = await http.post("/v1/workflows", json={})
        anonymous = await http.get("/v1/workflows", headers={"Authorization": ""})
    for answer in (missing, bad):
        assert answer.headers["ratelimit-policy"] == '"requests";q=100;w=60'
        assert answer.headers["ratelimit"].startswith('"requests";r=')
    assert missing.status_code == 404 and bad.status_code == 400
    assert anonymous.status_code == 401
    assert "ratelimit" not in anonymous.headers


async def test_401_comes_before_429(settings):
    settings = limited(settings, rate_limit="1/hour")
    key = await new_key(settings, unique("acme"))
    async with app_client(settings, key, run_engine=False) as http:
        assert (await http.get("/v1/workflows")).status_code == 200
        assert (await http.get("/v1/workflows")).status_code == 429
        wrong = await http.get("/v1/workflows", headers={"Authorization": "Bearer ll_live_nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Invalid API key"}


async def test_limits_are_per_key_and_a_key_may_have_its_own(settings):
    settings = limited(settings, rate_limit="2/hour")
    account = unique("acme")
    first = await new_key(settings, account)
    second = await new_key(settings, account)
    generous = await new_key(settings, account, rate_limit="5/hour")
    async with app_client(settings, run_engine=False) as http:

        async def codes(key: str, n: int) -> list[int]:
            headers = {"Authorization": f"Bearer {key}"}
            return [
                (await http.get("/v1/workflows", headers=headers)).status_code for _ in range(n)
            ]

        assert await codes(first, 3) == [200, 200, 429]
        assert await codes(second, 2) == [200, 200]  # another key of the same account
        assert await codes(generous, 6) == [200] * 5 + [429]
        answer = await http.get("/v1/workflows", headers={"Authorization": f"Bearer {generous}"})
    assert answer.headers["ratelimit-policy"] == '"requests";q=5;w=3600'


async def test_run_triggers_have_their_own_limit(settings, fake_provider):
    settings = limited(settings, rate_limit="100/hour", run_rate_limit="2/hour")
    key = await new_key(settings, unique("acme"))
    registry = ProviderRegistry(settings)
    registry.register("fake", fake_provider)
    async with app_client(settings, key, providers=registry) as http:
        created = await http.post("/v1/workflows", json={"name": "w", "model": "fake/t"})
        path = f"/v1/workflows/{created.json()['data']['id']}/runs"
        triggers = [await http.post(path, json={"input": "go"}) for _ in range(3)]
        listed = await http.get(path)
    assert [t.status_code for t in triggers] == [202, 202, 429]
    assert triggers[0].headers["ratelimit-policy"] == ('"requests";q=100;w=3600, "runs";q=2;w=3600')
    assert '"runs";r=1;' in triggers[0].headers["ratelimit"]
    assert triggers[2].json() == {"error": "Rate limit exceeded"}
    assert listed.status_code == 200  # reading is not a trigger
    assert len(listed.json()["data"]) == 2


@needs_redis
async def test_two_api_processes_share_counts_through_redis(settings, redis_db):
    settings = limited(settings, rate_limit="4/hour", redis_url=REDIS_TEST_URL)
    key = await new_key(settings, unique("acme"))
    # Two apps, each with its own limiter (as two processes have): only Redis is shared.
    async with (
        app_client(settings, key, run_engine=False) as one,
        app_client(settings, key, run_engine=False) as two,
    ):
        codes = []
        for http in (one, two, one, two, one, two):
            codes.append((await http.get("/v1/workflows")).status_code)
    assert codes == [200, 200, 200, 200, 429, 429]
    assert redis_db.dbsize() > 0  # the counts live in this database


@needs_redis
async def test_a_live_server_pair_shares_counts_through_redis(tmp_path, provider_server, redis_db):
    """Two real `loopllama serve` processes on one database and one Redis."""
    from tests.helpers import LiveServer

    env = {"LOOPLLAMA_REDIS_URL": REDIS_TEST_URL, "LOOPLLAMA_RATE_LIMIT": "3/hour"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = LiveServer(tmp_path / "a", provider_server, **env)
    second = LiveServer(
        tmp_path / "b", provider_server, **env, LOOPLLAMA_DATABASE_URL=first.database_url
    )
    second.api_key = first.api_key  # one database, one key
    first.start()
    second.start()
    try:
        codes = []
        async with first.client() as a, second.client() as b:
            for http in (a, b, a, b):
                codes.append((await http.get("/v1/workflows")).status_code)
    finally:
        first.stop()
        second.stop()
    assert codes == [200, 200, 200, 429]


async def test_redis_down_means_per_process_limits_logged_once(settings, caplog):
    settings = limited(settings, rate_limit="2/hour", redis_url="redis://127.0.0.1:1/0")
    key = await new_key(settings, unique("acme"))
    caplog.set_level(logging.WARNING, logger="loopllama.api")
    async with app_client(settings, key, run_engine=False) as http:
        codes = [(await http.get("/v1/workflows")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # served, and still limited (in this process)
    outages = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(outages) == 1


def test_a_bad_rate_setting_is_refused_at_startup():
    from pydantic import ValidationError

    from loopllama.settings import LimitSettings

    with pytest.raises(ValidationError, match="N/second, N/minute or N/hour"):
        LimitSettings(rate_limit="fast")


async def test_the_sdk_reports_the_servers_retry_after(settings):
    """The limiter's Retry-After reaches the SDK as RateLimitError.retry_after (how the SDK's
    backoff honours it is tested against scripted answers in tests/client/test_retries.py;
    here with no retries, so that the test does not depend on where the clock is within the
    limit's window)."""
    import httpx

    from loopllama.client import AsyncLoopLlama, RateLimitError

    settings = limited(settings, rate_limit="1/hour")
    key = await new_key(settings, unique("acme"))
    app = create_app(settings, migrate=False, run_engine=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        sdk = AsyncLoopLlama(
            api_key=key, base_url="http://testserver", http_client=http, max_retries=0
        )
        await sdk.workflows.list()
        with pytest.raises(RateLimitError) as caught:
            await sdk.workflows.list()
        await sdk.close()
    # Whole seconds, at least one, and no more than the window.
    retry_after = caught.value.retry_after
    assert retry_after is not None and 1 <= retry_after <= 3600
