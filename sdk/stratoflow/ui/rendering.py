"""HTML from Jinja2 templates, with the headers every response carries.

Autoescaping is on for every template: all shown strings (flow names, parameters, log
lines, event payloads) come from users' code or workers and are untrusted. Templates
never mark data `|safe`; data for scripts goes into `<script type="application/json">`
blocks through `|tojson` (which escapes `<`, `>`, `&` and quotes), read by
static/app.js. The Content-Security-Policy allows scripts from this site only (no
inline script, no eval), so even a missed escape could not run script.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from importlib import resources as package_files
from typing import Any

import jinja2
from aws_lambda_powertools.event_handler import Response

from stratoflow.events.labels import flow_run_of
from stratoflow.states import State
from stratoflow.ui.http import (
    automation_url,
    deployment_url,
    event_url,
    flow_run_url,
    work_pool_url,
)
from stratoflow.ui.sessions import CSRF_FIELD, CSRF_HEADER, optional_session

HTML = "text/html; charset=utf-8"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
"""On every response (stratoflow.ui.app adds them to whatever a route returns)."""
NAV = (
    ("dashboard", "Dashboard", "/"),
    ("flow-runs", "Flow runs", "/flow-runs"),
    ("deployments", "Deployments", "/deployments"),
    ("work-pools", "Work pools", "/work-pools"),
    ("automations", "Automations", "/automations"),
    ("events", "Events", "/events"),
)
STATIC_PACKAGE = "stratoflow.ui"
NONE = "\N{EN DASH}"
"""What a missing time, duration or size shows."""


def render(
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """A page (or an htmx fragment) from `templates/<template>`: the signed-in user, the
    CSRF token and the navigation are in every template's context."""
    html = environment().get_template(template).render(**context)
    return Response(
        status_code=status_code,
        content_type=HTML,
        body=html,
        headers={"Cache-Control": "no-store", **(headers or {})},
        compress=True,
    )


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(STATIC_PACKAGE, "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,  # a typo in a template fails its test
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        nav=NAV,
        static_url=static_url,
        csrf_field=CSRF_FIELD,
        csrf_header=CSRF_HEADER,
        session=optional_session,
        csrf_headers_json=csrf_headers_json,
        flow_run_url=flow_run_url,
        deployment_url=deployment_url,
        work_pool_url=work_pool_url,
        automation_url=automation_url,
        event_url=event_url,
        flow_run_of=flow_run_of,
    )
    env.filters.update(
        when=when,
        duration=duration,
        seconds=seconds,
        state_class=state_class,
        pretty_json=pretty_json,
        size=human_size,
    )
    return env


def csrf_headers_json() -> str:
    """`hx-headers` for `<body>`: every htmx request carries the session's CSRF token."""
    session = optional_session()
    return json.dumps({"X-CSRF-Token": session.csrf_token} if session else {})


def static_bytes(name: str) -> bytes | None:
    """A file of `static/` (`vendor/x.js` for the npm files), None when absent."""
    path = package_files.files(STATIC_PACKAGE).joinpath("static", *name.split("/"))
    return path.read_bytes() if path.is_file() else None


@functools.cache
def static_version(name: str) -> str:
    """A content hash: `?v=` of a static URL, so that it may be cached for a year."""
    data = static_bytes(name)
    return hashlib.sha256(data).hexdigest()[:12] if data is not None else "missing"


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_version(name)}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return NONE
    return (
        moment.strftime("%Y-%m-%d %H:%M:%S UTC")
        if moment.utcoffset() == timedelta(0)
        else (moment.isoformat(sep=" ", timespec="seconds"))
    )


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return NONE
    return seconds((end - start).total_seconds())


def seconds(amount: float | None) -> str:
    """A span of seconds for people: `4.2 s`, `3 min 5 s`, `2 h 10 min`."""
    if amount is None:
        return NONE
    if amount < 60:
        return f"{amount:.1f} s"
    minutes, secs = divmod(int(amount), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def state_class(state: State | str | None) -> str:
    """The CSS class of a state's badge: `state-completed`, `state-failed`, ..."""
    if state is None:
        return "state-none"
    kind = state if isinstance(state, str) else state.type.value
    return f"state-{kind.lower()}"


def pretty_json(value: Any) -> str:
    """Text (escaped by the template like any other) for a JSON-like value."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def human_size(size: int | None) -> str:
    if size is None:
        return NONE
    amount = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} bytes"
