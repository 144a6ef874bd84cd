"""send_email against real SMTP servers: plain, AUTH, STARTTLS, implicit TLS, and failures."""

from __future__ import annotations

import pytest

from loopllama.engine.tools.email import SendEmailTool, parse_smtp_url
from tests.fakes.mail_and_http import SmtpFactory
from tests.tools.support import context, free_port

MAIL = {"to": "ann@example.com", "subject": "Quarterly report", "body": "Hello Ann,\n\nAll good."}


async def test_plain_smtp_delivers_with_headers_and_body(smtp_server: SmtpFactory) -> None:
    server = smtp_server()
    ctx = context(smtp_url=server.url("smtp+plain"))
    mail = {**MAIL, "to": ["Ann Lee <ann@example.com>", "bob@example.com"], "cc": "cy@example.org"}

    outcome = await SendEmailTool().run(mail, ctx)

    assert not outcome.is_error, outcome.content
    assert outcome.content == "Email sent to ann@example.com, bob@example.com, cy@example.org."
    [received] = server.mails
    assert received.mail_from == "bot@loopllama.test"
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com", "cy@example.org"]
    assert not received.over_tls
    message = received.message
    assert message["From"] == "LoopLlama <bot@loopllama.test>"
    assert message["To"] == "Ann Lee <ann@example.com>, bob@example.com"
    assert message["Cc"] == "cy@example.org"
    assert message["Subject"] == "Quarterly report"
    assert message["Bcc"] is None
    assert message.get_content().replace("\r\n", "\n") == "Hello Ann,\n\nAll good.\n"
    assert message["Message-ID"].endswith("@loopllama.test>")


async def test_message_id_is_stable_for_one_call(smtp_server: SmtpFactory) -> None:
    server = smtp_server()
    tool = SendEmailTool()
    await tool.run(MAIL, context("call-a", smtp_url=server.url("smtp+plain")))
    await tool.run(MAIL, context("call-a", smtp_url=server.url("smtp+plain")))
    await tool.run(MAIL, context("call-b", smtp_url=server.url("smtp+plain")))

    ids = [m.message["Message-ID"] for m in server.mails]
    assert ids[0] == ids[1] != ids[2]


async def test_non_ascii_subject_and_body(smtp_server: SmtpFactory) -> None:
    server = smtp_server()
    mail = {**MAIL, "subject": "Café ☕ report", "body": "Grüße — ünïcode"}

    outcome = await SendEmailTool().run(mail, context(smtp_url=server.url("smtp+plain")))

    assert not outcome.is_error, outcome.content
    [received] = server.mails
    assert received.message["Subject"] == "Café ☕ report"
    assert received.message.get_content().rstrip() == "Grüße — ünïcode"


async def test_auth_with_credentials_from_the_url(smtp_server: SmtpFactory) -> None:
    server = smtp_server(auth=True)

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=server.url("smtp", auth=True)))

    assert not outcome.is_error, outcome.content
    [received] = server.mails
    assert received.authenticated


async def test_wrong_password_is_an_error_result(smtp_server: SmtpFactory) -> None:
    server = smtp_server(auth=True)
    url = f"smtp://mailer:wrong@127.0.0.1:{server.port}"

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=url))

    assert outcome.is_error
    assert "refused the login (535" in outcome.content
    assert "wrong" not in outcome.content
    assert server.mails == []


async def test_starttls_with_auth(smtp_server: SmtpFactory) -> None:
    server = smtp_server(tls="starttls", auth=True)
    url = server.url("smtp", auth=True, query="tls_verify=false")

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=url))

    assert not outcome.is_error, outcome.content
    [received] = server.mails
    assert received.over_tls
    assert received.authenticated


async def test_certificates_are_verified_by_default(smtp_server: SmtpFactory) -> None:
    server = smtp_server(tls="starttls")

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=server.url("smtp")))

    assert outcome.is_error
    assert "certificate" in outcome.content.lower(), outcome.content
    assert server.mails == []


async def test_smtp_plain_never_upgrades(smtp_server: SmtpFactory) -> None:
    # This server offers STARTTLS but requires it; smtp+plain:// must not take it up.
    server = smtp_server(tls="starttls")

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=server.url("smtp+plain")))

    assert outcome.is_error
    assert "530" in outcome.content  # "Must issue a STARTTLS command first"
    assert server.mails == []


async def test_implicit_tls(smtp_server: SmtpFactory) -> None:
    server = smtp_server(tls="implicit")
    url = server.url("smtps", query="tls_verify=false")

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=url))

    assert not outcome.is_error, outcome.content
    [received] = server.mails
    assert received.over_tls


async def test_not_configured_names_the_variable() -> None:
    outcome = await SendEmailTool().run(MAIL, context(smtp_url=None))

    assert outcome.is_error
    assert "LOOPLLAMA_SMTP_URL" in outcome.content


async def test_missing_from_names_the_variable(smtp_server: SmtpFactory) -> None:
    server = smtp_server()
    ctx = context(smtp_url=server.url("smtp+plain"), smtp_from=None)

    outcome = await SendEmailTool().run(MAIL, ctx)

    assert outcome.is_error
    assert "LOOPLLAMA_SMTP_FROM" in outcome.content
    assert server.mails == []


async def test_every_recipient_refused(smtp_server: SmtpFactory) -> None:
    server = smtp_server(refuse=frozenset({"ann@example.com"}))

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=server.url("smtp+plain")))

    assert outcome.is_error
    assert "ann@example.com (550 5.1.1 No such user here)" in outcome.content
    assert server.mails == []


async def test_some_recipients_refused(smtp_server: SmtpFactory) -> None:
    server = smtp_server(refuse=frozenset({"ghost@example.com"}))
    mail = {**MAIL, "to": ["ann@example.com", "ghost@example.com"]}

    outcome = await SendEmailTool().run(mail, context(smtp_url=server.url("smtp+plain")))

    assert not outcome.is_error
    assert outcome.content.startswith("Email sent to ann@example.com.")
    assert "Refused: ghost@example.com (550" in outcome.content
    [received] = server.mails
    assert received.rcpt_tos == ["ann@example.com"]


async def test_connection_refused() -> None:
    port = free_port()  # nothing listens there

    outcome = await SendEmailTool().run(MAIL, context(smtp_url=f"smtp://127.0.0.1:{port}"))

    assert outcome.is_error
    assert f"could not talk to the SMTP server at 127.0.0.1:{port}" in outcome.content


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Hi\r\nBcc: eve@evil.test"},
        {"subject": "Hi\nBcc: eve@evil.test"},
        {"to": "ann@example.com\r\nBcc: eve@evil.test"},
        {"to": ["ann@example.com", "x@y.test\nBcc: eve@evil.test"]},
        {"cc": "ann@example.com\rBcc: eve@evil.test"},
    ],
)
async def test_header_injection_is_refused(smtp_server: SmtpFactory, change: dict) -> None:
    server = smtp_server()

    outcome = await SendEmailTool().run({**MAIL, **change}, context(smtp_url=server.url()))

    assert outcome.is_error
    assert "Invalid input for send_email" in outcome.content
    assert "line breaks" in outcome.content
    assert server.mails == []


@pytest.mark.parametrize(
    "to", ["not-an-address", "ann@", "@example.com", "ann@example", "a@b@example.com", "", []]
)
async def test_invalid_addresses_are_refused(smtp_server: SmtpFactory, to: object) -> None:
    server = smtp_server()

    outcome = await SendEmailTool().run({**MAIL, "to": to}, context(smtp_url=server.url()))

    assert outcome.is_error
    assert outcome.content.startswith("Invalid input for send_email")
    assert server.mails == []


async def test_schema_invalid_input() -> None:
    outcome = await SendEmailTool().run({"to": "ann@example.com", "body": "x"}, context())

    assert outcome.is_error
    assert outcome.content == "Invalid input for send_email: 'subject' is a required property"


def test_parse_smtp_url() -> None:
    config = parse_smtp_url("smtps://user%40corp:s%3Acret@mail.example.com?tls_verify=false")
    assert (config.host, config.port, config.use_tls, config.start_tls) == (
        "mail.example.com",
        465,
        True,
        False,
    )
    assert (config.username, config.password, config.validate_certs) == (
        "user@corp",
        "s:cret",
        False,
    )
    assert parse_smtp_url("smtp://h").start_tls is None
    assert parse_smtp_url("smtp+plain://h:2525").start_tls is False


@pytest.mark.parametrize(
    "url", ["http://h", "smtp://", "smtp://h:99999", "smtp://h?verify=no", "smtp://u:secret@h?x=1"]
)
def test_parse_smtp_url_rejects_without_echoing_the_url(url: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_smtp_url(url)
    assert "secret" not in str(info.value)
    assert "LOOPLLAMA_SMTP_URL" in str(info.value)
