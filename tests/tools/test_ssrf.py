"""The address policy, and that connections go to the very addresses that were checked."""

from __future__ import annotations

import socket

import anyio
import pytest

from loopllama.engine.tools.http_request import HttpRequestTool
from loopllama.engine.tools.ssrf import DestinationError, refusal_reason, resolve_checked
from tests.fakes.mail_and_http import HttpServer
from tests.tools.support import context


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(address) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%2", "link-local"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("fec0::1", "site-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b:1::a00:1", "private"),  # local-use NAT64
        ("100.64.0.1", "not globally routable"),
        ("192.0.2.1", "private"),  # documentation ranges
        ("2001:db8::1", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert refusal_reason(address) == kind


async def test_resolution_checks_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # One public and one private answer: the private one is enough to refuse the host.
    async def getaddrinfo(host, port, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)

    with pytest.raises(DestinationError, match=r"mixed\.test \(10\.0\.0\.7\): private address"):
        await resolve_checked("mixed.test", 80, frozenset())
    assert await resolve_checked("mixed.test", 80, frozenset({"mixed.test"})) == [
        "8.8.8.8",
        "10.0.0.7",
    ]


async def test_connects_to_the_checked_address_keeping_the_host_name(
    http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `crm.internal` exists only in this resolver. The request can reach the server only by
    # connecting to the address the guard resolved (and checked), once, with the name kept in
    # the Host header.
    lookups: list[str] = []

    async def getaddrinfo(host, port, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)
    url = http_server.url("/hello", host="crm.internal")

    refused = await HttpRequestTool().run({"method": "GET", "url": url}, context())
    allowed = await HttpRequestTool().run(
        {"method": "GET", "url": url}, context(http_tool_allow="crm.internal")
    )

    assert refused.is_error
    assert "crm.internal (127.0.0.1): loopback address" in refused.content
    assert not allowed.is_error, allowed.content
    assert lookups == ["crm.internal", "crm.internal"]  # one lookup per call, none by httpx
    [request] = http_server.requests
    assert request.headers["host"] == f"crm.internal:{http_server.port}"
