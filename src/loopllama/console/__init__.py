"""The web console: static ES modules and CSS shipped in the package, served at `/console`.

The console is a client of the public API like any other: it signs in with an API key kept in
the browser's session storage and sends it as the `Authorization` header. It has no private
endpoint and no privilege the key does not have, so these routes need no authentication; they
serve the same bytes to everyone and no secret ever appears in them.

Why no framework and no build step: the console is small and long-lived, and a Python package
that serves it should install with `pip` alone. Plain ES modules run in every current browser,
there is no third-party browser code to audit or update, and nothing is downloaded at run time
(it works with no internet). The only non-trivial piece, the fetch-based SSE reader, is
unit-tested with `node --test` (tests/console/sse.test.mjs).
"""

from loopllama.console.routes import router

__all__ = ["router"]
