"""A real `loopllama serve` on loopback, the fake provider behind it, a receiver for webhooks and
custom tools on 127.0.0.1, and Debian's chromium driven by Playwright, guarded: any console
error or page error, and any request to a host other than the server, is recorded and fails the
test (and the screenshot script)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

CHROMIUM = "/usr/bin/chromium"
# Chromium logs every non-2xx answer as a console error ("Failed to load resource: the server
# responded with a status of 400"): that is the network panel talking, not a script failing,
# and the tests provoke such answers on purpose to see the API's message in the page.
NETWORK_LOG = "Failed to load resource: the server responded with a status of 4"


class Receiver:
    """POSTs on 127.0.0.1, recorded; answers `{"ok": true}` (a webhook endpoint or a custom
    tool's URL)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.condition:
                    receiver.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                    )
                    receiver.condition.notify_all()
                payload = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, path: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        def matching() -> list[dict[str, Any]]:
            return [item for item in self.received if item["path"] == path]

        with self.condition:
            self.condition.wait_for(lambda: len(matching()) >= count, timeout=timeout)
            found = matching()
        assert len(found) >= count, f"{len(found)} POSTs to {path}, wanted {count}"
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Guard:
    """What a page did that it must not: console errors, page errors, foreign requests."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    allowed: tuple[str, ...] = (NETWORK_LOG,)

    def watch(self, context: Any, page: Any) -> None:
        # Only other hosts are intercepted (and refused): an intercepted response is handed to
        # the page whole, which would hold back the run's event stream.
        def foreign(url: str) -> bool:
            parts = urlsplit(url)
            return parts.scheme not in ("data", "blob") and (
                f"{parts.scheme}://{parts.netloc}" != self.origin
            )

        def refuse(route: Any) -> None:
            self.foreign.append(route.request.url)
            route.abort()

        context.route(foreign, refuse)
        page.on(
            "console",
            lambda message: message.type == "error" and self.errors.append(message.text),
        )
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def problems(self) -> list[str]:
        unexpected = [e for e in self.errors if not e.startswith(self.allowed)]
        return unexpected + [f"request to another host: {url}" for url in self.foreign]


class api:
    """One-shot calls to the server's API (no pool to close), as a test's side channel."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {key}"}

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        return httpx.request(
            method, self.base_url + path, headers=self.headers, timeout=10, **options
        )

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return self.request("POST", path, json={} if json is None else json)


def sign_in(page: Any, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/console")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Workflows").wait_for()
