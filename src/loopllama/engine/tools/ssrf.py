"""Which addresses the HTTP tools may reach, enforced where the socket is opened.

Policy: a host may be reached only when EVERY address it resolves to is public. Refused:
loopback, private (RFC 1918, fc00::/7), link-local, multicast, reserved, unspecified, shared
(100.64/10) and other non-global ranges, cloud metadata endpoints (169.254.169.254,
fd00:ec2::254, ...), and IPv6 addresses that embed a refused IPv4 address (::ffff:127.0.0.1,
6to4, NAT64). A host listed in `LOOPLLAMA_HTTP_TOOL_ALLOW` skips the policy (compared with the
URL's host name, case-insensitively, so allowing `crm.internal` does not allow the address it
points to under another name).

Why at the socket and not on the URL: checking a URL and then letting the HTTP client resolve
the name again leaves a window for DNS rebinding (first answer public, second 127.0.0.1).
`GuardedBackend` is the httpcore network backend of every client built here: it resolves the
host once, checks every address, and opens the TCP connection to those checked addresses
themselves. httpcore hands only the TCP connect to the backend, so TLS (SNI and certificate
verification) and the Host header still use the host name. Each new connection passes through
it, so every redirect hop is checked too, whether httpx follows it or not.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from loopllama.settings import ToolSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS over IPv6
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")

# Checked in this order; the first that matches names the refusal.
_REFUSED_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
    ("is_site_local", "site-local"),  # IPv6 only; getattr default covers IPv4
)


class DestinationError(Exception):
    """The host cannot be resolved, or resolves to an address the policy refuses.

    The message is meant for the agent as is.
    """


def refusal_reason(address: str | IPAddress) -> str | None:
    """Why `address` may not be reached ("loopback", "cloud metadata", ...), or None if public."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%")[0])
        if ip.ipv4_mapped is not None:
            return refusal_reason(ip.ipv4_mapped)
        for embedded in _embedded_ipv4(ip):
            reason = refusal_reason(embedded)
            if reason is not None:
                return reason
        if ip in _LOCAL_NAT64:
            return "private"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    for attribute, kind in _REFUSED_KINDS:
        if getattr(ip, attribute, False):
            return kind
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Iterable[ipaddress.IPv4Address]:
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo
    if ip in _NAT64:
        yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def is_allowed_host(host: str, allow_hosts: frozenset[str]) -> bool:
    return host.strip("[]").rstrip(".").lower() in allow_hosts


async def resolve_checked(host: str, port: int, allow_hosts: frozenset[str]) -> list[str]:
    """The addresses of `host`, each one checked against the policy; raises DestinationError."""
    allowed = is_allowed_host(host, allow_hosts)
    bare = host.strip("[]")
    try:
        addresses = [str(ipaddress.ip_address(bare))]
    except ValueError:
        addresses = await _resolve(bare, port)
    if not allowed:
        for address in addresses:
            reason = refusal_reason(address)
            if reason is not None:
                subject = host if bare == address else f"{host} ({address})"
                raise DestinationError(
                    f"refused to connect to {subject}: {reason} address (only hosts listed in "
                    "LOOPLLAMA_HTTP_TOOL_ALLOW may be reached at such addresses)"
                )
    return addresses


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise DestinationError(f"could not resolve host {host}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DestinationError(f"could not resolve host {host}")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host, then connects to the checked addresses, never the name."""

    def __init__(self, allow_hosts: frozenset[str]) -> None:
        self._allow_hosts = allow_hosts
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await resolve_checked(host, port, self._allow_hosts)
        except TimeoutError:
            raise DestinationError(f"resolving {host} timed out") from None
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool rebuilt on a `GuardedBackend`."""

    def __init__(self, allow_hosts: frozenset[str]) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        # httpx offers no public way to pass a network backend; replace the pool it built.
        # Fail closed if a future httpx renames the attribute, rather than run unguarded.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx transport layout changed: cannot install the SSRF guard")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=GuardedBackend(allow_hosts)
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def guarded_client(settings: ToolSettings, *, follow_redirects: bool) -> httpx.AsyncClient:
    """An HTTP client that can only reach allowed addresses, at most MAX_REDIRECTS hops deep."""
    return httpx.AsyncClient(
        transport=GuardedTransport(settings.http_allow_hosts),
        timeout=settings.timeout,
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,  # no proxies or .netrc from the environment
    )


def url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL with a host, or None. No DNS lookup."""
    if not isinstance(url, str) or not url:
        return "url must be an absolute http:// or https:// URL"
    if len(url) > 2048:
        return "url must be at most 2048 characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "url must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return "url is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "url must use http or https"
    if not parts.hostname:
        return "url must include a host"
    return None
