"""The tool tests' servers: real SMTP and HTTP servers on loopback (tests/fakes)."""

from tests.fakes.mail_and_http import http_server, self_signed, smtp_server

__all__ = ["http_server", "self_signed", "smtp_server"]
