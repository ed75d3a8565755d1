"""The UI's Lambda function: powertools' resolver for Lambda Function URL events (payload
v2; CloudFront in front in AWS, `stratoflow.ui.devserver` locally), the page routers,
sign-in for every route, error pages and the security headers of every response."""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from stratoflow.context import get_services
from stratoflow.exceptions import ObjectNotFound, StratoflowError
from stratoflow.ui import auth, cognito, static
from stratoflow.ui.http import navigate_boosted
from stratoflow.ui.pages import (
    automations,
    dashboard,
    deployments,
    events,
    flow_run,
    flow_runs,
    work_pools,
)
from stratoflow.ui.rendering import SECURITY_HEADERS, render
from stratoflow.ui.sessions import AccessDenied, make_authenticate

logger = logging.getLogger("stratoflow.ui")

app = LambdaFunctionUrlResolver()
app.use(middlewares=[make_authenticate(auth.load_session, auth.public_url, auth.sign_in_response)])
for _router in (
    auth.router,
    cognito.router,
    static.router,
    dashboard.router,
    flow_runs.router,
    flow_run.router,
    deployments.router,
    work_pools.router,
    automations.router,
    events.router,
):
    app.include_router(_router)


def error_page(status: int, title: str, message: str) -> Response[str]:
    return render("error.html", status_code=status, status=status, title=title, message=message)


def _denied(exc: AccessDenied) -> Response[str]:
    return error_page(exc.status, exc.title, str(exc))


def _missing(exc: Exception) -> Response[str]:
    return error_page(404, "Not found", str(exc) or "There is no such page.")


@app.not_found
def _no_route(exc: NotFoundError) -> Response[str]:
    return error_page(404, "Not found", "There is no such page.")


def _refused(exc: StratoflowError) -> Response[str]:
    """stratoflow's own errors say what to fix (a bad filter, an invalid input)."""
    return error_page(400, "Cannot do that", str(exc))


def _failed(exc: Exception) -> Response[str]:
    # Logged with its traceback (CloudWatch, or the dev server's stderr); the page shows
    # no internals.
    logger.error("UI request failed", exc_info=exc)
    return error_page(500, "Something went wrong", "The request failed; the log has details.")


# Registered by calls, not decorators: powertools' decorators are untyped. The most
# specific class that matches is used (AccessDenied before Exception).
app.exception_handler(AccessDenied)(_denied)
app.exception_handler([ObjectNotFound, NotFoundError])(_missing)
app.exception_handler(StratoflowError)(_refused)
app.exception_handler(Exception)(_failed)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (functions/api/handler.py)."""
    # One read of the runs that are not final per request, whatever its panels list.
    with get_services().backend.active_runs_snapshot():
        response = navigate_boosted(event, app.resolve(event, context))
    headers = response.setdefault("headers", {})
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    return response
