"""The UI against an emulated installation, through real HTTP: the dev server turns each
request into a Lambda Function URL event for the API Lambda's handler. Imported by the
UI tests (fixtures `ui` and `ui_viewer`), not a conftest.py."""

from __future__ import annotations

import hashlib
import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from stratoflow.models import FlowRun
from stratoflow.run_ids import new_flow_run_id
from stratoflow.settings import get_settings
from stratoflow.states import Pending, Running, Scheduled, State
from stratoflow.ui.devserver import serve_ui
from tests.integration._deploy_fixtures import Installation, installation  # noqa: F401

OPERATOR_TOKEN = "operator-token-for-tests"
VIEWER_TOKEN = "viewer-token-for-tests"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    text: str
    cookies: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def csrf_token(self) -> str:
        found = _CSRF.search(self.text)
        assert found, "no CSRF token on the page"
        return unescape(found.group(1))


class Browser:
    """Just enough of a browser: cookies kept, redirects not followed (tests look at them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if method in ("POST", "PUT"):
            # What the page script adds for CloudFront's origin access control (the dev
            # server checks it as AWS would).
            sent.setdefault("x-amz-content-sha256", hashlib.sha256(body or b"").hexdigest())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            set_cookies = response.headers.get_all("Set-Cookie") or []
            page = Page(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                text,
                set_cookies,
            )
        finally:
            connection.close()
        for raw in set_cookies:
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in raw or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return page

    def get(self, path: str, **kwargs: Any) -> Page:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Page:
        return self.request("POST", path, **kwargs)

    def login(self, token: str = OPERATOR_TOKEN) -> Page:
        page = self.get(f"/login?token={token}")
        assert page.status == 303, page.text
        return page


@dataclass
class Ui:
    installation: Installation
    base: str

    def browser(self, *, role: str | None = "operator") -> Browser:
        """A browser, signed in as `role` (None: not signed in)."""
        browser = Browser(self.base)
        if role is not None:
            browser.login(OPERATOR_TOKEN if role == "operator" else VIEWER_TOKEN)
        return browser


def add_run(
    installation: Installation,
    *,
    name: str = "steady-otter",
    states: tuple[State, ...] = (Pending(), Running()),
    pool: str = "default",
    **fields: Any,
) -> FlowRun:
    """A flow run of `pool` created Scheduled and moved through `states` (forced, so any
    end state may be reached); `fields` are FlowRun fields (flow_name, created, ...)."""
    backend = installation.services.backend
    values: dict[str, Any] = {
        "flow_name": "etl",
        "work_pool_name": pool,
        "work_queue_name": "default",
        "created": installation.clock.now(),
        **fields,
    }
    run = FlowRun(id=new_flow_run_id(pool), name=name, state=Scheduled(), **values)
    backend.create_flow_run(run)
    for state in states:
        backend.set_flow_run_state(run.id, state, force=True)
    return backend.read_flow_run(run.id)


@pytest.fixture
def ui(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ui]:
    monkeypatch.setenv("STRATOFLOW_UI_LOGIN_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv("STRATOFLOW_UI_VIEWER_TOKEN", VIEWER_TOKEN)
    monkeypatch.setenv("STRATOFLOW_UI_SECURE_COOKIES", "false")
    get_settings.cache_clear()
    with serve_ui() as base:
        yield Ui(installation, base)
    get_settings.cache_clear()
