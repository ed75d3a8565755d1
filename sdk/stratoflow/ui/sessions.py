"""Signed-in users: sessions in the state table, the session cookie, roles and CSRF.

A session is an item `UISESSION#<sha256 of the session id>` / `META` (resources.py) with
the user, the role (`viewer` reads, `operator` also changes things), the CSRF token and a
TTL. The cookie holds the random session id; the table holds only its hash, so reading
the table (worker roles may) yields no usable session.

Every request but the public paths (`/static/`, `/auth/`, `/login`) needs a session:
`authenticate` (installed for the whole app by stratoflow.ui.app) checks it before any
route runs. Every request that is not GET or HEAD also needs the session's CSRF token (form
field `csrf_token` or header `X-CSRF-Token`, which htmx sends from `hx-headers` on
`<body>`), an `Origin` of this site when the browser sends one, and an operator session
(except `/logout`). So a page module's POST route is protected without doing anything;
it reads the signed-in user with `current_session()`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_item
from stratoflow.clock import Clock
from stratoflow.ui.http import form_data, form_value, request_origin

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
    from mypy_boto3_dynamodb import DynamoDBClient

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
SESSION_COOKIE = "stratoflow_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PUBLIC_PREFIXES = ("/static/", "/auth/")
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})
VIEWER_POSTS = frozenset({"/logout"})
"""State-changing paths a viewer may use (its own session only)."""
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class UiSession:
    user: str
    role: Role
    csrf_token: str
    expires_at: datetime

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


class AccessDenied(Exception):
    """The request may not do what it asks: rendered as an error page with `status`."""

    status = 403
    title = "Forbidden"


class NotSignedIn(AccessDenied):
    status = 401
    title = "Sign in"


class SessionStore:
    """Sessions as table items; DynamoDB's TTL deletes expired ones (late: `read` checks
    the expiry itself)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str, clock: Clock) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._clock = clock

    def create(self, user: str, role: Role, lifetime: timedelta) -> tuple[str, UiSession]:
        """A new session: returns the id (the cookie's value; never stored) and the session."""
        if role not in ROLES:
            raise ValueError(f"Unknown role {role!r}: one of {', '.join(ROLES)}")
        session_id = secrets.token_urlsafe(32)
        session = UiSession(
            user=user,
            role=role,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=(self._clock.now() + lifetime).replace(microsecond=0),  # as stored
        )
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                **to_item(resources.ui_session_key(session_id)),
                **to_item(
                    {
                        "user": user,
                        "role": role,
                        "csrf_token": session.csrf_token,
                        "created": self._clock.now().isoformat(),
                        resources.TTL_ATTRIBUTE: int(session.expires_at.timestamp()),
                    }
                ),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return session_id, session

    def read(self, session_id: str) -> UiSession | None:
        """The live session with this id; None when unknown, expired or not a session."""
        if not session_id or len(session_id) > 256:
            return None
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key=to_item(resources.ui_session_key(session_id)),
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        values = from_item(item)
        try:
            expires_at = datetime.fromtimestamp(int(values[resources.TTL_ATTRIBUTE]), tz=UTC)
            role = values["role"]
            session = UiSession(str(values["user"]), role, str(values["csrf_token"]), expires_at)
        except (KeyError, TypeError, ValueError):
            return None
        if role not in ROLES or expires_at <= self._clock.now():
            return None
        return session

    def delete(self, session_id: str) -> None:
        self._dynamodb.delete_item(
            TableName=self._table, Key=to_item(resources.ui_session_key(session_id))
        )


def session_cookie(session_id: str, *, secure: bool, max_age: timedelta) -> Cookie:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    Secure except on the local http://127.0.0.1 server."""
    return Cookie(
        name=SESSION_COOKIE,
        value=session_id,
        path="/",
        secure=secure,
        http_only=True,
        max_age=int(max_age.total_seconds()),
        same_site=SameSite.STRICT_MODE,
    )


def expired_cookie(name: str, *, secure: bool, path: str = "/") -> Cookie:
    """Removes the cookie `name` (set with the same `path`)."""
    return Cookie(
        name=name,
        value="",
        path=path,
        secure=secure,
        http_only=True,
        max_age=0,
        same_site=SameSite.STRICT_MODE,
    )


def request_cookie(event: BaseProxyEvent, name: str) -> str | None:
    """A cookie's value from the event's `cookies` (payload v2: one `name=value` each)."""
    for raw in event.get("cookies") or []:
        key, sep, value = str(raw).partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


_current: ContextVar[UiSession | None] = ContextVar("stratoflow_ui_session", default=None)


def current_session() -> UiSession:
    """The signed-in user of the request being handled (set by `authenticate`)."""
    session = _current.get()
    if session is None:
        raise NotSignedIn("This page needs a signed-in user.")
    return session


def optional_session() -> UiSession | None:
    """The signed-in user, or None on a public page."""
    return _current.get()


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def check_change_allowed(
    event: BaseProxyEvent, session: UiSession, *, public_url: str | None
) -> None:
    """A state-changing request must carry the session's CSRF token, come from a page of
    this site (Origin, when the browser sends it) and, unless it only ends the user's own
    session, be an operator's. Raises AccessDenied (403) with what is wrong."""
    given = event.headers.get(CSRF_HEADER) or form_value(form_data(event), CSRF_FIELD) or ""
    if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise AccessDenied(
            "The form's security token is missing or out of date (CSRF check). Reload the "
            "page and try again."
        )
    origin = event.headers.get("origin")
    if origin is not None and origin.rstrip("/") != request_origin(event, public_url):
        raise AccessDenied(f"Requests from {origin} may not change anything here.")
    if event.path not in VIEWER_POSTS and not session.is_operator:
        raise AccessDenied(
            f"{session.user} is a viewer: viewers cannot run, cancel, pause, resume or "
            "change anything. Ask an administrator for the operators group."
        )


Middleware = Callable[["BaseRouter", Callable[..., Response[Any]]], Response[Any]]


def make_authenticate(
    load: Callable[[str], UiSession | None],
    public_url: Callable[[], str | None],
    sign_in: Callable[[BaseProxyEvent], Response[Any]],
) -> Middleware:
    """The app-wide middleware: the session (or `sign_in(event)` when there is none), the
    checks of state-changing requests, then the route with `current_session()` set."""

    def authenticate(app: BaseRouter, next_middleware: Callable[..., Response[Any]]) -> Any:
        event = app.current_event
        if is_public(event.path):
            return next_middleware(app)
        session_id = request_cookie(event, SESSION_COOKIE)
        session = load(session_id) if session_id else None
        if session is None:
            return sign_in(event)
        token = _current.set(session)
        try:
            if event.http_method.upper() not in SAFE_METHODS:
                check_change_allowed(event, session, public_url=public_url())
            return next_middleware(app)
        finally:
            _current.reset(token)

    return authenticate


def require_operator(app: BaseRouter, next_middleware: Callable[..., Response[Any]]) -> Any:
    """Route middleware for a GET page only operators may see (every POST already needs an
    operator): `@router.get("/x", middlewares=[require_operator])`."""
    session = current_session()
    if not session.is_operator:
        raise AccessDenied(f"{session.user} is a viewer: this page is for operators.")
    return next_middleware(app)
