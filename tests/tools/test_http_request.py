"""http_request against a real HTTP server on 127.0.0.1, and the address policy in front of it."""

from __future__ import annotations

import json
import socket

import anyio
import anyio.abc
import pytest

from loopllama.engine.tools.http_request import MAX_BODY_CHARS, HttpRequestTool
from tests.fakes.mail_and_http import HttpServer
from tests.tools.support import context

ALLOW_LOCAL = {"http_tool_allow": "127.0.0.1"}


async def test_get_an_allow_listed_server(http_server: HttpServer) -> None:
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": http_server.url("/hello")}, context(**ALLOW_LOCAL)
    )

    assert not outcome.is_error, outcome.content
    assert outcome.content == "HTTP 200 OK\nContent-Type: text/plain; charset=utf-8\n\nhello"
    [request] = http_server.requests
    assert request.headers["host"] == f"127.0.0.1:{http_server.port}"


async def test_post_sends_headers_and_body(http_server: HttpServer) -> None:
    tool_input = {
        "method": "POST",
        "url": http_server.url("/echo"),
        "headers": {"X-Test": "yes", "Content-Type": "application/json"},
        "body": '{"a": 1}',
    }

    outcome = await HttpRequestTool().run(tool_input, context(**ALLOW_LOCAL))

    assert not outcome.is_error, outcome.content
    echo = json.loads(outcome.content.split("\n\n", 1)[1])
    assert echo["method"] == "POST"
    assert echo["body"] == '{"a": 1}'
    assert echo["headers"]["x-test"] == "yes"


async def test_error_statuses_are_answers_not_errors(http_server: HttpServer) -> None:
    outcome = await HttpRequestTool().run(
        {"method": "DELETE", "url": http_server.url("/status/503")}, context(**ALLOW_LOCAL)
    )

    assert not outcome.is_error
    assert outcome.content.startswith("HTTP 503 Service Unavailable\n")
    assert outcome.content.endswith("\n\nboom")


async def test_allow_listing_a_name_reaches_what_it_resolves_to(http_server: HttpServer) -> None:
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": http_server.url("/hello", host="localhost")},
        context(http_tool_allow="LocalHost"),
    )

    assert not outcome.is_error, outcome.content
    assert http_server.requests[0].headers["host"] == f"localhost:{http_server.port}"


@pytest.mark.parametrize(
    ("char", "n"), [("x", 20_000), ("é", 9_000), ("x", MAX_BODY_CHARS * 4 + 10)]
)
async def test_long_bodies_are_truncated(http_server: HttpServer, char: str, n: int) -> None:
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": http_server.url(f"/big?char={char}&n={n}")},
        context(**ALLOW_LOCAL),
    )

    body = outcome.content.split("\n\n", 1)[1]
    assert body == char * MAX_BODY_CHARS + "\n[Body truncated: showing the first 8,000 characters.]"


async def test_a_body_of_exactly_the_limit_is_whole(http_server: HttpServer) -> None:
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": http_server.url(f"/big?n={MAX_BODY_CHARS}")},
        context(**ALLOW_LOCAL),
    )

    assert outcome.content.endswith("\n\n" + "x" * MAX_BODY_CHARS)


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("127.0.0.1", "refused to connect to 127.0.0.1: loopback address"),
        ("localhost", "refused to connect to localhost (127.0.0.1): loopback address"),
        ("[::ffff:127.0.0.1]", "refused to connect to ::ffff:127.0.0.1 (::ffff:7f00:1): loopback"),
        ("2130706433", "refused to connect to 2130706433 (127.0.0.1): loopback address"),
    ],
)
async def test_loopback_is_refused_before_connecting(
    http_server: HttpServer, host: str, shown: str
) -> None:
    # The server is there and would answer: only the policy stands between.
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": http_server.url("/hello", host=host)}, context()
    )

    assert outcome.is_error
    assert outcome.content.startswith(f"HTTP request failed: {shown}")
    assert "LOOPLLAMA_HTTP_TOOL_ALLOW" in outcome.content
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10:8080/admin", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("https://[::1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://100.64.0.1/", "not globally routable"),
        ("http://[fe80::1]/", "link-local"),
    ],
)
async def test_non_public_addresses_are_refused(url: str, kind: str) -> None:
    outcome = await HttpRequestTool().run({"method": "GET", "url": url}, context())

    assert outcome.is_error
    assert f": {kind} address" in outcome.content


async def test_an_unresolvable_host_is_a_clean_error() -> None:
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": "https://no-such-host.invalid/x"}, context()
    )

    assert outcome.is_error
    assert outcome.content == "HTTP request failed: could not resolve host no-such-host.invalid"


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/hello",  # same server, but under a name that is not allowed
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused(
    http_server: HttpServer, target: str
) -> None:
    location = target.format(port=http_server.port)
    url = http_server.url(f"/redirect?to={location}")

    outcome = await HttpRequestTool().run({"method": "GET", "url": url}, context(**ALLOW_LOCAL))

    assert outcome.is_error
    assert "refused to connect to" in outcome.content
    assert [r.path for r in http_server.requests] == [f"/redirect?to={location}"]


async def test_a_redirect_between_allowed_hosts_is_followed(http_server: HttpServer) -> None:
    url = http_server.url(f"/redirect?to={http_server.url('/hello')}")

    outcome = await HttpRequestTool().run({"method": "GET", "url": url}, context(**ALLOW_LOCAL))

    assert not outcome.is_error, outcome.content
    assert outcome.content.startswith(f"HTTP 200 OK\nRedirected to: {http_server.url('/hello')}\n")
    assert outcome.content.endswith("\n\nhello")


async def test_redirects_are_bounded(http_server: HttpServer) -> None:
    outcome = await HttpRequestTool().run(
        {"method": "GET", "url": http_server.url("/loop")}, context(**ALLOW_LOCAL)
    )

    assert outcome.is_error
    assert outcome.content == "HTTP request failed: more than 5 redirects"
    assert len(http_server.requests) == 6


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "file:///etc/passwd", "example.com/x", "http:///nohost"]
)
async def test_only_absolute_http_urls(url: str) -> None:
    outcome = await HttpRequestTool().run({"method": "GET", "url": url}, context())

    assert outcome.is_error
    assert outcome.content.startswith("Invalid input for http_request: url ")


async def test_schema_invalid_input() -> None:
    outcome = await HttpRequestTool().run({"method": "FETCH", "url": "https://x.test"}, context())

    assert outcome.is_error
    assert outcome.content.startswith("Invalid input for http_request: method: 'FETCH' is not one")


async def test_connection_refused_on_an_allowed_host() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused

        outcome = await HttpRequestTool().run(
            {"method": "GET", "url": f"http://127.0.0.1:{port}/"}, context(**ALLOW_LOCAL)
        )

    assert outcome.is_error
    assert outcome.content.startswith("HTTP request failed: could not connect")


async def test_a_slow_server_times_out() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)  # accepts, never answers
        outcome = await HttpRequestTool().run(
            {"method": "GET", "url": f"http://127.0.0.1:{port}/"},
            context(timeout=0.3, **ALLOW_LOCAL),
        )

    assert outcome.is_error
    assert outcome.content == "HTTP request failed: timed out after 0.3 seconds"
