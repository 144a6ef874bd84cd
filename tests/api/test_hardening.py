"""Issue 9's defects, one regression test each, through the public API on both databases."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopllama.providers import fake
from tests.fakes import mail_and_http
from tests.fakes.mail_and_http import HttpServer
from tests.helpers import wait_for_run

http_server = mail_and_http.http_server  # a fixture: a recording HTTP server on loopback

TOOL = {
    "name": "crm_upsert",
    "description": "Create or update a CRM contact",
    "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    "url": "https://crm.example.com/hooks/upsert",
}
HANG = 30.0  # seconds: only reached if the server hangs


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def create(client, **body) -> dict:
    body = {"name": "w", "model": "fake/test", **body}
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def refused(client, path: str, body: object, method: str = "POST") -> str:
    response = await client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    return response.json()["error"]


# -- $ref: never fetched -----------------------------------------------------------------------


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/schema.json",
        "http://[::1]:{port}/schema.json",
        "http://127.0.0.1:{hanging}/never",
        "file://{file}",
        "other.json#/x",  # relative: resolved against a base URI, i.e. fetched
    ],
)
@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
async def test_remote_and_file_refs_in_tool_schemas_are_refused_and_never_fetched(
    client, http_server: HttpServer, hanging_port: int, tmp_path: Path, target: str, keyword: str
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "string", "description": "top secret"}')
    ref = target.format(port=http_server.port, hanging=hanging_port, file=secret)
    schema = {"type": "object", "properties": {"email": {keyword: ref}}}
    workflow = await create(client)
    async with asyncio.timeout(HANG):
        for method, path in (
            ("POST", "/v1/workflows"),
            ("PATCH", f"/v1/workflows/{workflow['id']}"),
        ):
            body = {"name": "w", "tools": [{**TOOL, "input_schema": schema}]}
            message = await refused(client, path, body, method)
            assert message.startswith(f"Tool 'crm_upsert': input_schema may only use {keyword}")
            assert "not allowed" in message
    assert http_server.requests == []


async def test_refs_within_the_schema_still_work(client, fake_provider, http_server) -> None:
    schema = {
        "type": "object",
        "$defs": {"email": {"type": "string", "minLength": 3}},
        "properties": {"email": {"$ref": "#/$defs/email"}},
        "required": ["email"],
    }
    tool = {**TOOL, "input_schema": schema}
    crew = [{"role": "crm", "systemPrompt": "p", "tools": ["crm_upsert"]}]
    workflow = await create(client, tools=[tool], crew=crew)
    fake_provider.enqueue(fake.tool_call("crm_upsert", {"email": "x"}), fake.reply("done"))
    run = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
    finished = await wait_for_run(client, run.json()["data"]["id"])
    (call,) = finished["steps"][0]["tool_calls"]
    # Validated against the referenced definition (too short), never sent anywhere.
    assert call["is_error"] and "email: 'x' is too short" in call["result"]
    assert http_server.requests == []


def test_the_call_time_validator_never_fetches_even_a_stored_remote_ref(http_server) -> None:
    from referencing.exceptions import Unresolvable

    from loopllama.engine.tools.schema import validator

    check = validator({"type": "object", "properties": {"a": {"$ref": http_server.url("/s")}}})
    with pytest.raises(Unresolvable):
        list(check.iter_errors({"a": 1}))
    assert http_server.requests == []


async def test_other_dialects_are_refused(client) -> None:
    schema = {"$schema": "http://127.0.0.1:1/meta", "type": "object"}
    message = await refused(
        client, "/v1/workflows", {"name": "w", "tools": [{**TOOL, "input_schema": schema}]}
    )
    assert "may only declare" in message


# -- depth and size ----------------------------------------------------------------------------


async def test_deeply_nested_tool_schemas_are_a_400_not_a_500(client) -> None:
    deep_schema = {"type": "object", "properties": {"a": nested(40, {"type": "string"})}}
    body = {"name": "w", "tools": [{**TOOL, "input_schema": deep_schema}]}
    assert "nested more than 32 levels" in await refused(client, "/v1/workflows", body)
    deeper = {"name": "w", "tools": [{**TOOL, "input_schema": nested(150, {})}]}
    assert await refused(client, "/v1/workflows", deeper) == (
        "JSON body must not be nested more than 64 levels deep"
    )
    arrays = b'{"name": "w", "x": ' + b"[" * 300 + b"]" * 300 + b"}"
    response = await client.post("/v1/workflows", content=arrays)
    assert response.json() == {"error": "JSON body must not be nested more than 64 levels deep"}


async def test_oversized_tool_schemas_are_a_400(client) -> None:
    properties = {f"p{i}": {"type": "string", "description": "x" * 200} for i in range(400)}
    schema = {"type": "object", "properties": properties}
    message = await refused(
        client, "/v1/workflows", {"name": "w", "tools": [{**TOOL, "input_schema": schema}]}
    )
    assert message == "Tool 'crm_upsert': input_schema must not exceed 65536 bytes as JSON"


async def test_a_model_tool_input_nested_300_deep_fails_the_step_as_contracted(
    client, fake_provider
) -> None:
    crew = [{"role": "caller", "systemPrompt": "p", "tools": ["http_request"]}]
    workflow = await create(client, crew=crew)
    fake_provider.enqueue(fake.tool_call("http_request", {"url": nested(300)}))
    run = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
    finished = await wait_for_run(client, run.json()["data"]["id"])
    assert finished["status"] == "failed"
    assert finished["error"] == (
        "Step 1 (caller) failed: the model called http_request with input nested more than "
        "64 levels deep"
    )


async def test_nul_from_a_model_never_breaks_a_run(client, fake_provider) -> None:
    """PostgreSQL stores NUL neither in text nor in JSON: it used to fail the write and re-drive
    the run (calling the model again)."""
    crew = [{"role": "caller", "systemPrompt": "p", "tools": ["http_request"]}]
    workflow = await create(client, crew=crew)
    fake_provider.enqueue(
        fake.tool_call("http_request", {"url": "a\x00b", "k\x00": 1}), fake.reply("x\x00y")
    )
    run = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
    finished = await wait_for_run(client, run.json()["data"]["id"])
    assert (finished["status"], finished["output"]) == ("completed", "x\ufffdy")
    (call,) = finished["steps"][0]["tool_calls"]
    assert call["input"] == {"url": "a\ufffdb", "k\ufffd": 1}
    assert len(fake_provider.requests) == 2  # each model call made once


# -- every route: deep, NUL and huge inputs ----------------------------------------------------


async def test_deep_nul_and_huge_inputs_get_no_500_on_any_route(
    client, fake_provider, caplog
) -> None:
    """Every operation of the OpenAPI document (those added later too), with real ids and
    with bad ones: NUL, control characters, non-ASCII, 5,000 characters."""
    caplog.set_level(logging.INFO)
    workflow = await create(client)
    run = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "go"})
    run_id = run.json()["data"]["id"]
    await wait_for_run(client, run_id)
    real = {"workflow_id": workflow["id"], "run_id": run_id}
    bodies = [
        b"[" * 300 + b"]" * 300,
        b'{"a": ' * 200 + b"1" + b"}" * 200,
        b'{"name": "a\\u0000b", "input": "\\u0000", "action": "input"}',
        b'{"name": "' + b"x" * 900_000 + b'"}',
    ]
    document = (await client.get("/openapi.json")).json()
    operations = [
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    ]
    assert len(operations) >= 10
    # DELETE last: it removes the real workflow the other routes are called with.
    for template, method in sorted(operations, key=lambda op: op[1] == "DELETE"):
        names = re.findall(r"{(\w+)}", template)
        for bad in ("a%00b", "x" * 5000, "%C3%A9", "a%0Ab"):
            path = template
            for name in names:
                path = path.replace("{" + name + "}", bad)
            response = await client.request(method, path, content=bodies[0])
            if names:
                assert response.status_code == 404, (method, path[:80], response.text)
                assert response.json() == {"error": "Not found"}
            assert response.status_code < 500
        path = template
        for name in names:
            path = path.replace("{" + name + "}", real.get(name, "x"))
        for body in bodies:
            response = await client.request(method, path, content=body)
            assert response.status_code < 500, (method, path, body[:40], response.text)
            if response.status_code == 200 and template.endswith("/stream"):
                assert response.headers["content-type"].startswith("text/event-stream")
            elif response.status_code != 204:
                assert response.headers["content-type"] == "application/json"
    assert "Traceback" not in caplog.text and "\x00" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- protocol edges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/workflows", "GET, POST"),
        ("PUT", "/v1/workflows/x", "DELETE, GET, PATCH"),
        ("DELETE", "/v1/workflows/x/runs", "GET, POST"),
        ("POST", "/v1/runs/x", "GET"),
        ("GET", "/v1/runs/x/respond", "POST"),
    ],
)
async def test_405_names_every_method_of_the_route(client, method, path, allow) -> None:
    response = await client.request(method, path)
    assert (response.status_code, response.json()) == (405, {"error": "Method not allowed"})
    assert response.headers["allow"] == allow


async def test_a_trailing_slash_is_a_404_never_a_redirect(client) -> None:
    workflow = await create(client)
    for path in ("/v1/workflows/", f"/v1/workflows/{workflow['id']}/", "/v1/runs/x/"):
        response = await client.get(path, headers={"Host": "evil.example"})
        assert (response.status_code, response.json()) == (404, {"error": "Not found"})
        assert "location" not in response.headers


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e308, "Number must be less than or equal to 2592000"),
        (0.0, "Number must be greater than or equal to 1"),
        (1.5, "Expected integer, received float"),
        ("5", "Expected number, received string"),
    ],
)
async def test_number_limits_use_zods_wording(client, value, message) -> None:
    body = {"name": "w", "human_in_the_loop": {"timeout_seconds": value}}
    assert await refused(client, "/v1/workflows", body) == message


async def test_a_whole_float_is_a_number_like_any_other(client) -> None:
    workflow = await create(client, human_in_the_loop={"timeout_seconds": 60.0})
    assert workflow["human_in_the_loop"]["timeout_seconds"] == 60


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 65, "String must contain at most 64 character(s)"),
        ("", "String must contain at least 1 character(s)"),
        ("Bad Name", "Invalid tool name 'Bad Name': use only a-z, 0-9, '_' and '-'"),
    ],
)
async def test_tool_name_limits_use_the_one_wording(client, name, message) -> None:
    assert (
        await refused(client, "/v1/workflows", {"name": "w", "tools": [{**TOOL, "name": name}]})
        == message
    )


async def test_empty_model_is_refused(client) -> None:
    assert await refused(client, "/v1/workflows", {"name": "w", "model": ""}) == (
        "String must contain at least 1 character(s)"
    )


# -- custom tool headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Authorization": "Bearer x\r\nX-Evil: 1"}, "Invalid value of header 'Authorization'"),
        ({"Authorization": "Bearer x\n"}, "Invalid value of header 'Authorization'"),
        ({"X-Name": "caf\u00e9"}, "Invalid value of header 'X-Name'"),
        ({"X-Tab": "\tlead"}, "Invalid value of header 'X-Tab'"),
        ({"Bad Header": "v"}, "Invalid header name 'Bad Header'"),
        ({"X-\u00e9": "v"}, "Invalid header name"),
    ],
)
async def test_custom_tool_headers_are_validated_at_create_and_patch(
    client, headers, fragment
) -> None:
    tools = [{**TOOL, "headers": headers}]
    assert fragment in await refused(client, "/v1/workflows", {"name": "w", "tools": tools})
    workflow = await create(client)
    path = f"/v1/workflows/{workflow['id']}"
    assert fragment in await refused(client, path, {"tools": tools}, "PATCH")
    # The secret itself never appears in the message.
    assert "Bearer x" not in await refused(client, path, {"tools": tools}, "PATCH")


# -- strict inputs -----------------------------------------------------------------------------


async def test_unknown_keys_are_refused_in_every_body_object(client, fake_provider) -> None:
    wf = await create(client, human_in_the_loop={"ask_questions": True})
    cases = [
        ("POST", "/v1/workflows", {"name": "w", "crews": []}, "'crews'"),
        ("POST", "/v1/workflows", {"name": "w", "b": 1, "a": 2}, "'b', 'a'"),
        (
            "POST",
            "/v1/workflows",
            {"name": "w", "crew": [{"role": "r", "systemPrompt": "p", "temperature": 1}]},
            "'temperature'",
        ),
        ("POST", "/v1/workflows", {"name": "w", "human_in_the_loop": {"ask": True}}, "'ask'"),
        ("POST", "/v1/workflows", {"name": "w", "tools": [{**TOOL, "method": "PUT"}]}, "'method'"),
        ("PATCH", f"/v1/workflows/{wf['id']}", {"stauts": "paused"}, "'stauts'"),
        ("POST", f"/v1/workflows/{wf['id']}/runs", {"input": "x", "inputs": "y"}, "'inputs'"),
    ]
    for method, path, body, keys in cases:
        message = await refused(client, path, body, method)
        assert message == f"Unrecognized key(s) in object: {keys}"
    fake_provider.enqueue(fake.tool_call("ask_human", {"question": "Which?"}))
    run = await client.post(f"/v1/workflows/{wf['id']}/runs", json={"input": "go"})
    run_id = run.json()["data"]["id"]
    await wait_for_run(client, run_id, ("waiting_input",))
    body = {"action": "input", "input": "x", "answer": "y"}
    assert await refused(client, f"/v1/runs/{run_id}/respond", body) == (
        "Unrecognized key(s) in object: 'answer'"
    )


# -- GET /v1/workflows pages -------------------------------------------------------------------


async def test_workflow_list_pages_with_limit_and_after(client, other_api_key, app) -> None:
    ids = [(await create(client, name=f"w{i}"))["id"] for i in range(5)]
    newest_first = ids[::-1]
    everything = (await client.get("/v1/workflows")).json()
    assert "has_more" not in everything
    assert [w["id"] for w in everything["data"]] == newest_first

    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = (await client.get("/v1/workflows", params=params)).json()
        seen += [w["id"] for w in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == newest_first

    only_after = (await client.get("/v1/workflows", params={"after": ids[2]})).json()
    assert [w["id"] for w in only_after["data"]] == ids[1::-1]
    assert only_after["has_more"] is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "Invalid 'limit': Number must be greater than or equal to 1"),
        ({"limit": 1001}, "Invalid 'limit': Number must be less than or equal to 1000"),
        ({"limit": "ten"}, "Invalid 'limit': Expected number, received string"),
        ({"after": "nope"}, "Invalid 'after': not a workflow of this account"),
        ({"after": "a\x00b"}, "Invalid 'after': not a workflow of this account"),
    ],
)
async def test_bad_page_parameters_are_a_400(client, params, message) -> None:
    response = await client.get("/v1/workflows", params=params)
    assert (response.status_code, response.json()) == (400, {"error": message})


async def test_another_accounts_workflow_is_no_cursor(client, app, other_api_key) -> None:
    import httpx

    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as other:
        theirs = (await other.post("/v1/workflows", json={"name": "t", "model": "fake/t"})).json()
    response = await client.get("/v1/workflows", params={"after": theirs["data"]["id"]})
    assert response.status_code == 400
