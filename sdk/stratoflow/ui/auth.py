"""Signing in and out: the local login link of `strato dev` and the session cookie.

`strato dev` prints a link with a random token (`/login?token=...`): the token opens an
operator session (`STRATOFLOW_UI_LOGIN_TOKEN`), a second one a viewer session
(`STRATOFLOW_UI_VIEWER_TOKEN`). In AWS the users sign in with the Cognito hosted login
(`/auth/login`, docs/ui.md).
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from stratoflow.platform import Platform, get_platform
from stratoflow.settings import Settings, get_settings
from stratoflow.ui import sign_in_settings
from stratoflow.ui.http import is_htmx, local_path, new_router, query_value, redirect, with_query
from stratoflow.ui.sessions import (
    SESSION_COOKIE,
    NotSignedIn,
    Role,
    SessionStore,
    UiSession,
    current_session,
    expired_cookie,
    request_cookie,
    session_cookie,
)

router = new_router()


_store: tuple[Platform, SessionStore] | None = None


def session_store() -> SessionStore:
    """The sessions of the current platform's table (made once per platform)."""
    global _store
    platform = get_platform()
    if _store is None or _store[0] is not platform:
        backend = platform.backend
        _store = (platform, SessionStore(backend.dynamodb, backend.table, platform.services.clock))
    return _store[1]


def load_session(session_id: str) -> UiSession | None:
    return session_store().read(session_id)


def public_url() -> str | None:
    return sign_in_settings.public_url()


def sign_in_response(event: BaseProxyEvent) -> Response[Any]:
    """No session: htmx reloads the page (which then comes here), a page goes to the
    Cognito login when there is one, else a page says how to sign in locally."""
    if is_htmx(event):
        return Response(status_code=401, headers={"HX-Refresh": "true"}, body="")
    settings = get_settings()
    target = event.path + (f"?{event['rawQueryString']}" if event.get("rawQueryString") else "")
    if event.http_method.upper() == "GET" and sign_in_settings.cognito_config() is not None:
        return redirect(with_query("/auth/login", {"next": target}), status=302)
    raise NotSignedIn(_local_sign_in_hint(settings))


def _local_sign_in_hint(settings: Settings) -> str:
    if settings.ui_login_token is None:
        return (
            "This UI has no sign-in configured: set STRATOFLOW_UI_SIGN_IN_PARAMETER (the "
            "stack sets it) or STRATOFLOW_UI_COGNITO_*, or run `strato dev`, which prints "
            "a login link (STRATOFLOW_UI_URL)."
        )
    return "Open the login link `strato dev` printed (STRATOFLOW_UI_URL=...) to sign in."


def _token_role(token: str, settings: Settings) -> Role | None:
    """Which role a login token opens, comparing in constant time."""
    given = token.encode()
    for secret, role in (
        (settings.ui_login_token, "operator"),
        (settings.ui_viewer_token, "viewer"),
    ):
        if secret is not None and hmac.compare_digest(given, secret.get_secret_value().encode()):
            return role  # type: ignore[return-value]
    return None


def start_session(user: str, role: Role, next_path: str) -> Response[Any]:
    """Create a session and send the browser on with its cookie."""
    settings = get_settings()
    lifetime = timedelta(hours=settings.ui_session_hours)
    session_id, _ = session_store().create(user, role, lifetime)
    response = redirect(local_path(next_path))
    response.cookies.append(
        session_cookie(session_id, secure=settings.ui_secure_cookies, max_age=lifetime)
    )
    return response


@router.get("/login")
def login() -> Response[Any]:
    """The local login link: `/login?token=...[&next=/flow-runs]`."""
    settings = get_settings()
    token = query_value(router.current_event, "token") or ""
    role = _token_role(token, settings) if token else None
    if role is None:
        raise NotSignedIn(
            "That login link is not valid (its token is wrong or from an earlier "
            f"`strato dev`). {_local_sign_in_hint(settings)}"
        )
    user = "local operator" if role == "operator" else "local viewer"
    return start_session(user, role, query_value(router.current_event, "next") or "/")


@router.post("/logout")
def logout() -> Response[Any]:
    current_session()  # authenticate checked the session and its CSRF token
    session_id = request_cookie(router.current_event, SESSION_COOKIE)
    if session_id:
        session_store().delete(session_id)
    response = redirect(sign_in_settings.SIGNED_OUT_PATH)
    response.cookies.append(expired_cookie(SESSION_COOKIE, secure=get_settings().ui_secure_cookies))
    return response
