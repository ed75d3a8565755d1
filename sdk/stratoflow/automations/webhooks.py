"""Sending webhooks: `urllib.request` with a timeout and without redirects, and the host
allow-list (STRATOFLOW_WEBHOOK_ALLOWED_HOSTS)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stratoflow.exceptions import StratoflowError


class ActionError(StratoflowError):
    """An action could not do what it was asked (the message says why)."""


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout: float


HttpSender = Callable[[WebhookRequest], int]
"""Sends a request and returns the HTTP status; raises when it fails."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the allow-list: it is an error instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def urllib_sender(request: WebhookRequest) -> int:
    opener = urllib.request.build_opener(_NoRedirects)
    prepared = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    target = f"{request.method} {request.url}"
    try:
        with opener.open(prepared, timeout=request.timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise ActionError(f"{target} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ActionError(f"{target} failed: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise ActionError(f"{target} failed: {type(exc).__name__}: {exc}") from None


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(
        host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed
    )
