"""One error envelope for every route and every failure: `{"error": message}` and nothing else."""

from __future__ import annotations

import pytest

from tests.helpers import app_client

ROUTES = [
    ("GET", "/v1/workflows"),
    ("POST", "/v1/workflows"),
    ("GET", "/v1/workflows/x"),
    ("PATCH", "/v1/workflows/x"),
    ("DELETE", "/v1/workflows/x"),
    ("POST", "/v1/workflows/x/runs"),
    ("GET", "/v1/workflows/x/runs"),
    ("GET", "/v1/runs/x"),
    ("POST", "/v1/runs/x/respond"),
    ("GET", "/v1/keys"),
    ("POST", "/v1/keys"),
    ("DELETE", "/v1/keys/x"),
    ("GET", "/v1/runs"),
    ("POST", "/v1/runs/x/cancel"),
    ("POST", "/v1/runs/x/retry"),
    ("POST", "/v1/runs/x/fork"),
    ("GET", "/v1/workflows/x/versions"),
    ("GET", "/v1/workflows/x/versions/1"),
    ("POST", "/v1/workflows/x/versions/1/restore"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks/x"),
    ("PATCH", "/v1/webhooks/x"),
    ("DELETE", "/v1/webhooks/x"),
    ("POST", "/v1/webhooks/x/rotate_secret"),
    ("GET", "/v1/webhooks/x/deliveries"),
    ("POST", "/v1/webhooks/x/deliveries/y/redeliver"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Missing Bearer token"),
        ("Basic dXNlcjpwYXNz", "Missing Bearer token"),
        ("Bearer ", "Missing Bearer token"),
        ("Bearer sk-not-ours", "Invalid token format"),
        ("Bearer ll_live_unknownkeyunknownkeyunknownkey0000000", "Invalid API key"),
    ],
)
async def test_every_route_authenticates_first(anonymous, method, path, authorization, message):
    headers = {"Authorization": authorization} if authorization else {}
    response = await anonymous.request(method, path, headers=headers, content=b"{bad")
    assert response.status_code == 401
    assert response.json() == {"error": message}
    assert response.headers["content-type"] == "application/json"


async def test_revoked_keys_stop_working_at_once(client, settings):
    from loopllama.store.db import Database
    from loopllama.store.keys import list_keys, revoke_key

    assert (await client.get("/v1/workflows")).status_code == 200
    db = Database(settings.database.url, pool_size=1)
    async with db.write() as conn:
        (key,) = await list_keys(conn)
        assert await revoke_key(conn, key["id"])
    await db.dispose()
    response = await client.get("/v1/workflows")
    assert (response.status_code, response.json()) == (401, {"error": "Invalid API key"})


async def test_unknown_route_and_wrong_method(client):
    response = await client.get("/v2/nothing")
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})
    response = await client.put("/v1/workflows")
    assert (response.status_code, response.json()) == (405, {"error": "Method not allowed"})


async def test_body_over_the_limit_is_413(client):
    response = await client.post("/v1/workflows", content=b"x" * (1024 * 1024 + 1))
    assert (response.status_code, response.json()) == (413, {"error": "Request body too large"})


async def test_streamed_body_over_the_limit_is_413(client):
    async def chunks():
        for _ in range(17):
            yield b"x" * 65536

    response = await client.post("/v1/workflows", content=chunks())
    assert (response.status_code, response.json()) == (413, {"error": "Request body too large"})


async def test_unexpected_failure_is_a_bare_500(settings, api_key, monkeypatch, caplog):
    from loopllama.store import workflows

    async def broken(*_args, **_kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(workflows, "list_workflows", broken)
    async with app_client(settings, api_key, run_engine=False) as http:
        response = await http.get("/v1/workflows")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error"}
    assert "secret detail" not in response.text
    assert "secret detail" in caplog.text


async def test_database_down_is_503_with_the_envelope(tmp_path, api_key):
    from loopllama.settings import DatabaseSettings, Settings

    settings = Settings(
        database=DatabaseSettings(url="postgresql://postgres@127.0.0.1:1/nowhere", pool_size=1)
    )
    async with app_client(settings, api_key, run_engine=False) as http:
        response = await http.get("/v1/workflows")
    assert response.status_code == 503
    assert response.json() == {"error": "Service temporarily unavailable"}
    assert response.headers["retry-after"] == "1"


async def test_health(anonymous):
    response = await anonymous.get("/healthz")
    assert response.json() == {"data": {"status": "ok"}}


async def test_nul_characters_are_a_400_on_every_backend(client):
    for body in (
        {"name": "a\u0000b"},
        {"name": "ok", "crew": [{"role": "r", "systemPrompt": "p\u0000"}]},
    ):
        response = await client.post("/v1/workflows", json=body)
        assert (response.status_code, response.json()) == (
            400,
            {"error": "Strings must not contain NUL (\\u0000) characters"},
        )
    # A literal backslash-u sequence is just text.
    response = await client.post("/v1/workflows", json={"name": "a\\u0000b", "model": "fake/x"})
    assert response.status_code == 201
