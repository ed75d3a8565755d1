"""`/static/...`: the UI's CSS and JS, and the npm libraries in `static/vendor/`, from the
package's data. A URL with the file's content hash (`rendering.static_url`) is cached
for a year: a new release has new hashes."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from stratoflow.ui.http import new_router, query_value
from stratoflow.ui.rendering import static_bytes, static_version

router = new_router()

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
YEAR_SECONDS = 365 * 24 * 3600


def serve(name: str) -> Response[Any]:
    last = name.rsplit("/", 1)[-1]
    suffix = last[last.rfind(".") :] if "." in last else ""
    data = static_bytes(name) if _NAME.fullmatch(last) and suffix in CONTENT_TYPES else None
    if data is None:
        raise NotFoundError(f"No static file {name}")
    versioned = query_value(router.current_event, "v") == static_version(name)
    cache = f"public, max-age={YEAR_SECONDS}, immutable" if versioned else "public, max-age=300"
    return Response(
        status_code=200,
        content_type=CONTENT_TYPES[suffix],
        body=data,
        headers={"Cache-Control": cache},
        compress=suffix in {".css", ".js", ".svg"},
    )


@router.get("/static/<name>")
def static_file(name: str) -> Response[Any]:
    return serve(name)


@router.get("/static/vendor/<name>")
def vendor_file(name: str) -> Response[Any]:
    """htmx and Chart.js, copied from ui/node_modules by `make install`."""
    return serve(f"vendor/{name}")
