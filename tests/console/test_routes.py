"""The console's routes: `/` redirects, the page and its assets carry a strict CSP, nothing
outside the asset table is served, and the page holds no inline code and no secret."""

from __future__ import annotations

import re

from loopllama.console.routes import STATIC


async def test_root_redirects_to_the_console(client):
    response = await client.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == "/console"


async def test_the_page_and_assets_carry_a_strict_policy(client):
    page = await client.get("/console", headers={"Authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for name in re.findall(r'(?:src|href)="/console/assets/([^"]+)"', page.text):
        asset = await client.get(f"/console/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-security-policy"] == policy


async def test_only_the_shipped_assets_are_served(client):
    for name in ("nope.js", "..%2F__init__.py", "index.html"):
        response = await client.get(f"/console/assets/{name}")
        assert response.status_code == 404
        assert response.json() == {"error": "Not found"}


def test_no_inline_script_or_style_and_no_html_sinks():
    html = (STATIC / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "<style" not in html and "style=" not in html and " on" not in html.split("<body>")[1]
    for module in STATIC.glob("*.mjs"):
        source = module.read_text()
        # Text goes in as text nodes: no HTML parsing of anything the API returns.
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{module.name} uses {sink}"


def test_the_console_is_not_in_the_api_document(app):
    paths = app.openapi()["paths"]
    assert "/console" not in paths and "/" not in paths
