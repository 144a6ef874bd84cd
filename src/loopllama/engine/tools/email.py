"""The `send_email` built-in: a plain-text mail through the server's SMTP relay.

`LOOPLLAMA_SMTP_URL` picks the transport:

    smtp://[user:pass@]host[:port]        STARTTLS when the server offers it (default port 25)
    smtps://[user:pass@]host[:port]       TLS from the first byte (default port 465)
    smtp+plain://[user:pass@]host[:port]  never TLS (default port 25)

User and password (percent-encoded in the URL) turn on SMTP AUTH. One query option exists:
`?tls_verify=false` accepts any server certificate (a relay with a self-signed certificate, and
the tests); certificates are verified by default. The mail comes from `LOOPLLAMA_SMTP_FROM`.

Addresses in `to` / `cc` (a string, comma-separated addresses allowed, or a list) are checked
before anything is sent, and CR, LF and other control characters are refused in every header
value, so the input cannot smuggle headers (`Bcc:`) into the mail. The Message-ID derives from
the call's idempotency key, so a re-sent call carries the same ID and receivers can spot it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from loopllama.engine.tools.base import SchemaTool, ToolContext, ToolOutcome
from loopllama.providers.base import ToolSpec

_ADDRESSES = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}

SEND_EMAIL_SPEC = ToolSpec(
    name="send_email",
    description="Send a plain-text email.",
    input_schema={
        "type": "object",
        "properties": {
            "to": {**_ADDRESSES, "description": "Recipient address, or a list of them."},
            "cc": {**_ADDRESSES, "description": "Carbon-copy address, or a list of them."},
            "subject": {"type": "string"},
            "body": {"type": "string", "description": "Plain-text body."},
        },
        "required": ["to", "subject", "body"],
        "additionalProperties": False,
    },
)

_ADDR_SPEC = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidInput(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: when the server offers it
    validate_certs: bool

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpConfig:
    """Raises ValueError with a message that never includes the URL (it may hold a password)."""
    parts = urlsplit(url)
    modes = {
        "smtp": (False, None, 25),
        "smtps": (True, False, 465),
        "smtp+plain": (False, False, 25),
    }
    if parts.scheme.lower() not in modes:
        raise ValueError("LOOPLLAMA_SMTP_URL must start with smtp://, smtps:// or smtp+plain://")
    use_tls, start_tls, default_port = modes[parts.scheme.lower()]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("LOOPLLAMA_SMTP_URL has an invalid port") from None
    if not parts.hostname:
        raise ValueError("LOOPLLAMA_SMTP_URL has no host")
    validate_certs = True
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "tls_verify" and value.lower() in ("true", "false"):
            validate_certs = value.lower() == "true"
        else:
            raise ValueError(f"LOOPLLAMA_SMTP_URL has an unknown option {key!r}")
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=use_tls,
        start_tls=start_tls,
        validate_certs=validate_certs,
    )


def parse_addresses(value: str | list[str], field: str) -> list[tuple[str, str]]:
    """(display name, address) pairs; raises InvalidInput naming the bad entry."""
    entries = [value] if isinstance(value, str) else value
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        if _CONTROL.search(entry):
            raise InvalidInput(f"{field} must not contain line breaks or control characters")
        parsed = getaddresses([entry])
        if not parsed or any(not _ADDR_SPEC.fullmatch(addr) for _, addr in parsed):
            raise InvalidInput(f"{field} has an invalid email address: {entry!r}")
        pairs.extend(parsed)
    if not pairs:
        raise InvalidInput(f"{field} must name at least one address")
    return pairs


def _format(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(formataddr(pair) for pair in pairs)


class SendEmailTool(SchemaTool):
    def __init__(self, from_address: str | None = None) -> None:
        spec = SEND_EMAIL_SPEC
        if from_address:
            spec = ToolSpec(
                spec.name, f"Send a plain-text email from {from_address}.", spec.input_schema
            )
        super().__init__(spec)

    async def execute(self, input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        settings = ctx.settings
        if settings.smtp_url is None:
            return _error("email is not configured on this server (set LOOPLLAMA_SMTP_URL)")
        if not settings.smtp_from:
            return _error("email is not configured on this server (set LOOPLLAMA_SMTP_FROM)")
        try:
            config = parse_smtp_url(settings.smtp_url.get_secret_value())
            from_pairs = parse_addresses(settings.smtp_from, "LOOPLLAMA_SMTP_FROM")
            if len(from_pairs) != 1:
                raise InvalidInput("LOOPLLAMA_SMTP_FROM must hold exactly one address")
        except ValueError as exc:  # InvalidInput included
            return _error(f"email is misconfigured on this server: {exc}")
        sender = from_pairs[0][1]
        try:
            message, recipients = _build_message(input, from_pairs[0], ctx.idempotency_key)
        except InvalidInput as exc:
            return ToolOutcome(f"Invalid input for send_email: {exc}", is_error=True)

        try:
            async with asyncio.timeout(settings.timeout):
                refused, _ = await aiosmtplib.send(
                    message,
                    sender=sender,
                    recipients=recipients,
                    hostname=config.host,
                    port=config.port,
                    username=config.username,
                    password=config.password,
                    use_tls=config.use_tls,
                    start_tls=config.start_tls,
                    validate_certs=config.validate_certs,
                    timeout=settings.timeout,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _error("every recipient was refused: " + _refusals(exc.recipients))
        except aiosmtplib.SMTPAuthenticationError as exc:
            return _error(f"the SMTP server refused the login ({exc.code} {exc.message})")
        except aiosmtplib.SMTPSenderRefused as exc:
            return _error(f"the SMTP server refused the sender {sender} ({exc.code} {exc.message})")
        except aiosmtplib.SMTPResponseException as exc:
            return _error(f"the SMTP server answered {exc.code} {exc.message}")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return _error(f"the SMTP server at {config.where} did not answer in time")
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            return _error(f"could not talk to the SMTP server at {config.where}: {_reason(exc)}")

        delivered = [r for r in recipients if r not in refused]
        summary = f"Email sent to {', '.join(delivered)}."
        if refused:
            summary += " Refused: " + "; ".join(
                f"{addr} ({resp.code} {resp.message})" for addr, resp in refused.items()
            )
        return ToolOutcome(summary)


def _build_message(
    input: dict[str, Any], sender: tuple[str, str], idempotency_key: str
) -> tuple[EmailMessage, list[str]]:
    to = parse_addresses(input["to"], "to")
    cc = parse_addresses(input["cc"], "cc") if input.get("cc") else []
    subject = input["subject"]
    if _CONTROL.search(subject):
        raise InvalidInput("subject must not contain line breaks or control characters")
    domain = sender[1].rpartition("@")[2]
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]

    message = EmailMessage()
    message["From"] = formataddr(sender)
    message["To"] = _format(to)
    if cc:
        message["Cc"] = _format(cc)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{digest}@{domain}>"
    message.set_content(input["body"])
    recipients = list(dict.fromkeys(addr for _, addr in [*to, *cc]))
    return message, recipients


def _refusals(recipients: list[aiosmtplib.SMTPRecipientRefused]) -> str:
    return "; ".join(f"{r.recipient} ({r.code} {r.message})" for r in recipients)


def _reason(exc: BaseException) -> str:
    # aiosmtplib wraps socket and TLS failures; the underlying cause reads better.
    cause = exc.__cause__ or exc.__context__
    text = str(exc)
    if isinstance(cause, ssl.SSLError | OSError) and str(cause) not in text:
        text = f"{text} ({cause})" if text else str(cause)
    return text or type(exc).__name__


def _error(reason: str) -> ToolOutcome:
    return ToolOutcome(f"Email not sent: {reason}", is_error=True)
