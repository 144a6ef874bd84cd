"""`/docs` renders offline: every script, stylesheet and icon it names is served by the app."""

from __future__ import annotations

import re


async def test_docs_page_loads_only_local_assets(anonymous):
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    assert not re.search(r"https?://", page.text.replace("http://testserver", ""))
    for url in urls:
        asset = await anonymous.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls)
    assert "/openapi.json" in urls
