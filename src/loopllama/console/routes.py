"""`/console` (the page), `/console/assets/<file>` (its modules and styles) and `/` (a redirect).

Assets are served from a fixed table built from the package directory at import time, so a
request can name nothing outside it. Every answer carries a strict Content-Security-Policy: only
this origin's scripts and styles, no inline code, no frames, API calls to this origin only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from loopllama.api.errors import error_response

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = {path.name: path for path in STATIC.iterdir() if path.suffix in _TYPES}

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The page and its modules change with the package: revalidate rather than serve stale code.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> Response:
    # A path, not an absolute URL: never built from the request's Host header.
    return RedirectResponse("/console", status_code=307)


@router.get("/console")
async def page() -> Response:
    return Response(
        (STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8", headers=HEADERS
    )


@router.get("/console/assets/{name}")
async def asset(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        return error_response(404, "Not found")
    return Response(path.read_bytes(), media_type=_TYPES[path.suffix], headers=HEADERS)
