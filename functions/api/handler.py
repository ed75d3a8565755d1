"""API Lambda: the web UI (docs/ui.md), behind a Function URL and CloudFront.

Thin: the routes, pages and sign-in live in stratoflow.ui; the same `handler` serves
`strato dev`'s local UI (stratoflow.ui.devserver).
"""

from stratoflow.ui.app import handler

__all__ = ["handler"]
