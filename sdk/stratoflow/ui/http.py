"""Reading requests and building plain responses: what every page module shares.

Requests arrive as Lambda Function URL events (payload v2), in AWS and from
`stratoflow.ui.devserver` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def new_router() -> Router:
    """A page module's `router` (powertools' Router has no type annotations)."""
    return Router()  # type: ignore[no-untyped-call]


def form_data(event: BaseProxyEvent) -> dict[str, list[str]]:
    """A POSTed HTML form's fields (each a list: checkboxes and multi-selects repeat).
    Anything but a urlencoded body is no form: an empty dict."""
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE or not event.body:
        return {}
    return parse_qs(event.decoded_body, keep_blank_values=True)


def form_value(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[-1] if values else None


def query_params(event: BaseProxyEvent) -> dict[str, list[str]]:
    """The query string's parameters, repeated ones as lists (the event's
    `queryStringParameters` joins them with commas, which a value may contain)."""
    raw = event.get("rawQueryString") or ""
    return parse_qs(raw, keep_blank_values=False)


def query_value(event: BaseProxyEvent, name: str) -> str | None:
    values = query_params(event).get(name)
    return (values[-1].strip() or None) if values else None


def path_value(raw: str) -> str:
    """A route's `<name>` parameter, percent-decoded (the event's `rawPath` keeps the
    encoding the browser sent: `/deployments/my%20etl`)."""
    return unquote(raw)


def is_htmx(event: BaseProxyEvent) -> bool:
    """Whether htmx sent this request (it wants a fragment, not a whole page)."""
    return event.headers.get("hx-request") == "true"


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path of this site, else `default`: a `next=` parameter must not
    send a signed-in user to another site (open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


def redirect(location: str, *, status: int = 303) -> Response[str]:
    """See other: after a POST the browser GETs `location` (no resubmission on reload)."""
    return Response(status_code=status, headers={"Location": location}, body="")


def with_query(path: str, params: Mapping[str, str | None]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def request_origin(event: BaseProxyEvent, public_url: str | None) -> str:
    """The origin browsers use for this site: the configured public URL (CloudFront's, in
    AWS: the function sees its own host there), else the request's scheme and Host."""
    if public_url:
        return public_url.rstrip("/")
    scheme = event.headers.get("x-forwarded-proto") or "https"
    return f"{scheme}://{event.headers.get('host', '')}"


# Links between pages, one spelling each (templates have them as globals).
def flow_run_url(flow_run_id: str, suffix: str = "") -> str:
    return f"/flow-runs/{quote(flow_run_id, safe='')}{suffix}"


def deployment_url(name: str, suffix: str = "") -> str:
    return f"/deployments/{quote(name, safe='')}{suffix}"


def work_pool_url(name: str, suffix: str = "") -> str:
    return f"/work-pools/{quote(name, safe='')}{suffix}"


def automation_url(automation_id: str, suffix: str = "") -> str:
    return f"/automations/{quote(automation_id, safe='')}{suffix}"


def event_url(event_id: str, flow_run_id: str | None = None) -> str:
    """An event's page; `flow_run_id`: the run it is about, from whose items the page
    derives it when it was not stored (stratoflow.events.on_read.find_event)."""
    return with_query(f"/events/{quote(event_id, safe='')}", {"flow_run": flow_run_id})


def navigate_boosted(event: Mapping[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """A boosted form (`hx-boost`: htmx posts it, signing its body, static/app.js) sends
    its POST with XMLHttpRequest, which follows a redirect itself and cannot follow one to
    another site. Its redirect becomes `HX-Redirect`, on which htmx
    navigates as the browser does after a plain form's POST."""
    headers = response.get("headers") or {}
    location = headers.get("Location")
    boosted = (event.get("headers") or {}).get("hx-boosted") == "true"
    if not boosted or location is None or not 300 <= int(response.get("statusCode", 200)) < 400:
        return response
    kept = {k: v for k, v in headers.items() if k != "Location"}
    return {**response, "statusCode": 200, "headers": {**kept, "HX-Redirect": location}}
