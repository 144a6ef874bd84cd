"""The toolbox, the create-time checks of custom tools, masking, and call summaries."""

from __future__ import annotations

import pytest

from loopllama.engine.tools import (
    BUILTIN_TOOL_NAMES,
    build_toolbox,
    check_input_schema,
    check_tool_url,
    mask_headers,
    summarize_call,
)
from tests.tools.support import tool_settings

CRM = {
    "name": "crm_upsert",
    "description": "Create or update a CRM contact",
    "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    "url": "https://crm.example.com/hooks/upsert",
    "headers": {"Authorization": "Bearer x"},
}


def test_toolbox_has_builtins_and_custom_tools() -> None:
    toolbox = build_toolbox([CRM], tool_settings(smtp_from="Ops <ops@corp.test>"))

    assert set(toolbox) == BUILTIN_TOOL_NAMES | {"crm_upsert"}
    assert {"send_email", "http_request"} == BUILTIN_TOOL_NAMES
    for name, tool in toolbox.items():
        assert callable(tool.run)
        assert tool.spec.name == name
        assert check_input_schema(tool.spec.input_schema) is None
    assert toolbox["crm_upsert"].spec.description == "Create or update a CRM contact"
    assert "ops@corp.test" in toolbox["send_email"].spec.description


@pytest.mark.parametrize("name", ["send_email", "crm_upsert"])
def test_toolbox_refuses_a_name_twice(name: str) -> None:
    with pytest.raises(ValueError, match="used twice"):
        build_toolbox([CRM, {**CRM, "name": name}], tool_settings())


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}},
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
            "required": ["tags"],
            "additionalProperties": False,
        },
    ],
)
def test_good_input_schemas(schema: dict) -> None:
    assert check_input_schema(schema) is None


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "input_schema must be an object"),
        ("object", "input_schema must be an object"),
        ({}, 'input_schema must have "type": "object"'),
        ({"type": "string"}, 'input_schema must have "type": "object"'),
        ({"type": "objekt"}, "input_schema is not a valid JSON Schema: type: 'objekt' is not"),
        (
            {"type": "object", "properties": {"a": {"type": 5}}},
            "input_schema is not a valid JSON Schema: properties/a/type: 5 is not",
        ),
        (
            {"type": "object", "required": "email"},
            "input_schema is not a valid JSON Schema: required: 'email' is not of type 'array'",
        ),
    ],
)
def test_bad_input_schemas(schema: object, message: str) -> None:
    problem = check_input_schema(schema)
    assert problem is not None
    assert problem.startswith(message)


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/hooks/upsert",
        "http://localhost:8080/x?y=1",
        "http://127.0.0.1:9000",
        "https://[::1]:8443/",
        "HTTPS://Example.COM/",
    ],
)
def test_good_tool_urls(url: str) -> None:
    assert check_tool_url(url) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "url must be an absolute http:// or https:// URL"),
        (None, "url must be an absolute http:// or https:// URL"),
        ("ftp://example.com/", "url must use http or https"),
        ("crm.example.com/hooks", "url must use http or https"),
        ("/hooks/upsert", "url must use http or https"),
        ("https://", "url must include a host"),
        ("https:///path", "url must include a host"),
        ("https://example.com:99999/", "url is not a valid URL"),
        ("https://exa mple.com/", "url must not contain whitespace or control characters"),
        ("https://example.com/\r\nX: y", "url must not contain whitespace or control characters"),
        ("https://user:pw@example.com/", "url must not contain credentials; put them in headers"),
        ("https://" + "a" * 2050 + ".com", "url must be at most 2048 characters"),
    ],
)
def test_bad_tool_urls(url: str, message: str) -> None:
    assert check_tool_url(url) == message


def test_mask_headers() -> None:
    assert mask_headers({"Authorization": "Bearer abc", "X-Api-Key": "k"}) == {
        "Authorization": "****",
        "X-Api-Key": "****",
    }
    assert mask_headers({}) == {}


@pytest.mark.parametrize(
    ("name", "tool_input", "summary"),
    [
        (
            "send_email",
            {"to": "a@b.com", "subject": "Hi", "body": "x"},
            'Send email to a@b.com: "Hi"',
        ),
        (
            "send_email",
            {"to": ["a@b.com", "c@d.com"], "cc": "e@f.com", "subject": "Q3", "body": "x"},
            'Send email to a@b.com, c@d.com (cc e@f.com): "Q3"',
        ),
        ("http_request", {"method": "post", "url": "https://x.test/y"}, "POST https://x.test/y"),
        ("crm_upsert", {"email": "a@b.com"}, 'Call crm_upsert with {"email": "a@b.com"}'),
        ("send_email", {"subject": "no to"}, 'Call send_email with {"subject": "no to"}'),
    ],
)
def test_summarize_call(name: str, tool_input: dict, summary: str) -> None:
    assert summarize_call(name, tool_input) == summary


def test_summaries_are_one_short_line() -> None:
    summary = summarize_call("crm_upsert", {"note": "line one\nline two " + "z" * 500})

    assert "\n" not in summary
    assert len(summary) == 200
    assert summary.endswith("…")
    assert summary.startswith('Call crm_upsert with {"note": "line one\\nline two zzz')
