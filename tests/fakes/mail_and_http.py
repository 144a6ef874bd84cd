"""Real SMTP (aiosmtpd) and HTTP (http.server) servers on 127.0.0.1 for tests.

Both run in threads of the test process and record exactly what reached them.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.tools.support import SMTP_PASSWORD, SMTP_USER, free_port

# ---------------------------------------------------------------------------------------------
# TLS certificate (self-signed, for localhost and 127.0.0.1)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    # The `cryptography` package is not installed; the openssl CLI is.
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Cert(cert, key)


# ---------------------------------------------------------------------------------------------
# SMTP
# ---------------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    authenticated: bool


@dataclass
class SmtpServer:
    port: int
    mails: list[ReceivedMail]

    def url(self, scheme: str = "smtp", *, auth: bool = False, query: str = "") -> str:
        credentials = f"{SMTP_USER}:p%40ss%20word@" if auth else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}{'?' + query if query else ''}"


class RecordingHandler:
    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.mails: list[ReceivedMail] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.mails.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=BytesParser(policy=default_policy).parsebytes(envelope.content),
                over_tls=server.transport.get_extra_info("ssl_object") is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 Message accepted"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 or 535


SmtpFactory = Callable[..., SmtpServer]


@pytest.fixture
def smtp_server(self_signed: Cert) -> Iterator[SmtpFactory]:
    """Starts SMTP servers: `smtp_server(tls="starttls" | "implicit" | None, auth=bool)`."""
    controllers: list[Controller] = []

    def start(
        *, tls: str | None = None, auth: bool = False, refuse: frozenset[str] = frozenset()
    ) -> SmtpServer:
        handler = RecordingHandler(set(refuse))
        port = free_port()
        options: dict[str, Any] = {"hostname": "127.0.0.1", "port": port}
        if tls == "starttls":
            options.update(tls_context=self_signed.server_context(), require_starttls=True)
        elif tls == "implicit":
            options.update(ssl_context=self_signed.server_context())
        if auth:
            # Over plain SMTP too: the client logs in whenever the URL has credentials. (AUTH is
            # required only with TLS: aiosmtpd warns about requiring it on a plain connection.)
            secure = tls is not None
            options.update(
                authenticator=_authenticator, auth_required=secure, auth_require_tls=secure
            )
        controller = Controller(handler, **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(port, handler.mails)

    yield start
    for controller in controllers:
        controller.stop()


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    port: int
    requests: list[ReceivedRequest] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    """Routes: /hello, /echo, /big?n=&char=, /status/<code>, /redirect?to=<url>, /loop."""

    server: _RecordingServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = ReceivedRequest(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        self.server.record.requests.append(received)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/hello":
            self._send(200, b"hello", "text/plain; charset=utf-8")
        elif parts.path == "/echo":
            echo = {"method": received.method, "headers": received.headers, "body": body.decode()}
            self._send(200, json.dumps(echo).encode(), "application/json")
        elif parts.path == "/big":
            text = query.get("char", "x") * int(query.get("n", "20000"))
            self._send(200, text.encode(), "text/plain; charset=utf-8")
        elif parts.path.startswith("/status/"):
            self._send(int(parts.path.rsplit("/", 1)[1]), b"boom", "text/plain")
        elif parts.path in ("/redirect", "/loop"):
            self.send_response(302)
            self.send_header("Location", query.get("to", "/loop"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    record: HttpServer


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = _RecordingServer(("127.0.0.1", 0), _Handler)
    server.record = HttpServer(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.record
    server.shutdown()
    server.server_close()
    thread.join()
