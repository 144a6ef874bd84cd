"""A check at the edge, before routing: paths that can name nothing.

A path with a control character (`%00` decodes to NUL, which PostgreSQL cannot even compare), a
non-ASCII character (routes and ids are ASCII) or a segment longer than any id is answered
`404 Not found` here, for every route present and future, without a database round trip and
without the raw bytes reaching a log line.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from loopllama.api.errors import error_response
from loopllama.limits import MAX_ID_LENGTH

# Route segments are short words; ids are at most MAX_ID_LENGTH. 4x leaves room for both.
MAX_SEGMENT_LENGTH = 4 * MAX_ID_LENGTH


def impossible_path(path: str) -> bool:
    if not path.isascii() or any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return True
    return any(len(segment) > MAX_SEGMENT_LENGTH for segment in path.split("/"))


class PathGuard:
    """404 for a path that no route can match, before any route (or log) sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    # Not `async`: it hands back the awaitable of the app it calls instead of awaiting it,
    # so no frame of its own stays on the stack for as long as a request runs (an event
    # stream runs for hours, and a thousand of them would each keep one).
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http" and impossible_path(scope["path"]):
            return error_response(404, "Not found")(scope, receive, send)
        return self.app(scope, receive, send)
