"""Signing in with the Cognito user pool's hosted login (in AWS): the OAuth 2.0
authorization code flow with PKCE, for a public app client (no client secret).

`/auth/login` sends the browser to Cognito with a random `state` and the S256 challenge
of a random code verifier, both kept in a short-lived HttpOnly cookie (no table write
before anyone has signed in). `/auth/callback` checks the returned `state` against the
cookie, exchanges the code for tokens at the token endpoint (urllib, TLS), checks the ID
token's `iss`, `aud`, `token_use` and `exp` — an ID token received directly from the
token endpoint over TLS needs no signature check (OpenID Connect Core 1.0, 3.1.3.7) —
and opens a session: operator when `cognito:groups` has STRATOFLOW_UI_OPERATORS_GROUP,
viewer otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from stratoflow.settings import get_settings
from stratoflow.ui.auth import start_session
from stratoflow.ui.http import local_path, new_router, query_value, request_origin
from stratoflow.ui.rendering import render
from stratoflow.ui.sessions import AccessDenied, NotSignedIn, Role, expired_cookie, request_cookie
from stratoflow.ui.sign_in_settings import (
    CALLBACK_PATH,
    SIGNED_OUT_PATH,
    CognitoConfig,
    cognito_config,
    public_url,
)

router = new_router()

LOGIN_COOKIE = "stratoflow_login"
LOGIN_SECONDS = 600
"""How long a sign-in at Cognito may take."""
TOKEN_TIMEOUT_SECONDS = 10


class SignInFailed(NotSignedIn):
    """The hosted login's answer cannot be used; the page says why and links to retry."""


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 4.2): base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def redirect_uri(event: Any) -> str:
    return request_origin(event, public_url()) + CALLBACK_PATH


def _config() -> CognitoConfig:
    config = cognito_config()
    if config is None:
        raise NotSignedIn(
            "This UI has no Cognito sign-in configured (STRATOFLOW_UI_SIGN_IN_PARAMETER, "
            "which the stack sets, or STRATOFLOW_UI_COGNITO_DOMAIN, _CLIENT_ID, "
            "_USER_POOL_ID). Locally, open the login link `strato dev` printed."
        )
    return config


@router.get("/auth/login")
def login() -> Response[str]:
    config = _config()
    settings = get_settings()
    event = router.current_event
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)
    target = local_path(query_value(event, "next"))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect_uri(event),
            "scope": "openid email profile",
            "state": state,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    response: Response[str] = Response(
        status_code=302, headers={"Location": f"{config.domain}/oauth2/authorize?{query}"}
    )
    # Lax, not Strict: Cognito's redirect back to /auth/callback is a cross-site
    # navigation, on which a Strict cookie would not be sent.
    response.cookies.append(
        Cookie(
            name=LOGIN_COOKIE,
            value=f"{state}.{verifier}.{_b64(target)}",
            path=CALLBACK_PATH,
            secure=settings.ui_secure_cookies,
            http_only=True,
            max_age=LOGIN_SECONDS,
            same_site=SameSite.LAX_MODE,
        )
    )
    return response


PostForm = Callable[[str, Mapping[str, str]], Mapping[str, Any]]


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Where a plain http:// token endpoint is accepted (a test's stand-in for Cognito)."""


def post_form(url: str, fields: Mapping[str, str]) -> Mapping[str, Any]:
    """POST a form to the token endpoint; its JSON answer (an error answer raises)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    ):
        raise SignInFailed("The Cognito domain must be an https:// URL.")
    request = urllib.request.Request(
        url,
        data=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TOKEN_TIMEOUT_SECONDS) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        # Cognito's refusals (a code used twice, a wrong verifier): 400 with a JSON error.
        raise SignInFailed(f"Cognito refused the sign-in ({_error_of(exc.read())}).") from None
    except OSError as exc:  # unreachable, timed out, TLS
        raise SignInFailed(f"Cognito's token endpoint cannot be reached ({exc}).") from None
    try:
        loaded = json.loads(body)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        raise SignInFailed("Cognito's token endpoint did not answer with a JSON object.")
    return loaded


def _error_of(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return "no reason given"
    if not isinstance(document, dict):
        return "no reason given"
    return str(document.get("error_description") or document.get("error") or "no reason given")


_post_form: PostForm = post_form
"""The token endpoint's client (tests replace it)."""


def id_token_claims(
    id_token: str, config: CognitoConfig, *, now: float | None = None
) -> dict[str, Any]:
    """The ID token's claims after the checks OIDC requires of a token endpoint's ID
    token (iss, aud, token_use, exp); SignInFailed when one fails."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise SignInFailed("Cognito's ID token is not a JWT.")
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        raise SignInFailed("Cognito's ID token cannot be read.") from None
    if not isinstance(claims, dict):
        raise SignInFailed("Cognito's ID token cannot be read.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    expires = claims.get("exp")
    if claims.get("iss") != config.issuer:
        raise SignInFailed("The ID token comes from another user pool.")
    if config.client_id not in audiences:
        raise SignInFailed("The ID token is for another app client.")
    if claims.get("token_use") != "id":
        raise SignInFailed("The token is not an ID token.")
    if not isinstance(expires, int | float) or expires <= (now if now is not None else time.time()):
        raise SignInFailed("The ID token has expired: sign in again.")
    return claims


def role_of(claims: Mapping[str, Any], config: CognitoConfig) -> Role | None:
    """operator in the operators group; viewer in the viewers group, or anyone when the
    settings name none; None: no role here (the stack's pool has both groups)."""
    groups = claims.get("cognito:groups")
    groups = groups if isinstance(groups, list) else []
    if config.operators_group in groups:
        return "operator"
    if config.viewers_group is None or config.viewers_group in groups:
        return "viewer"
    return None


@router.get(CALLBACK_PATH)
def callback() -> Response[str]:
    config = _config()
    settings = get_settings()
    event = router.current_event
    if query_value(event, "error"):
        raise SignInFailed(f"Cognito refused the sign-in: {query_value(event, 'error')}.")
    saved = (request_cookie(event, LOGIN_COOKIE) or "").split(".")
    state, code = query_value(event, "state") or "", query_value(event, "code") or ""
    if len(saved) != 3 or not code or not hmac.compare_digest(saved[0], state):
        raise SignInFailed(
            "This sign-in did not start here or took too long (its state does not match): "
            "sign in again."
        )
    tokens = _post_form(
        f"{config.domain}/oauth2/token",
        {
            "grant_type": "authorization_code",
            "client_id": config.client_id,
            "code": code,
            "redirect_uri": redirect_uri(event),
            "code_verifier": saved[1],
        },
    )
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed("Cognito's token endpoint gave no ID token.")
    claims = id_token_claims(id_token, config)
    user = str(claims.get("email") or claims.get("cognito:username") or claims.get("sub"))
    role = role_of(claims, config)
    if role is None:
        raise AccessDenied(
            f"{user} may not use this UI: ask an administrator to add you to the "
            f"{config.viewers_group!r} or {config.operators_group!r} group of its user pool."
        )
    try:
        target = local_path(_unb64(saved[2]).decode())
    except ValueError:
        target = "/"
    started = start_session(user, role, target)
    # A page, not a redirect: the session cookie is SameSite=Strict, and a redirect still
    # belongs to the navigation that began at Cognito (cross-site), where the browser
    # would not send it; the page's own refresh is same-site.
    page = render("signing_in.html", target=started.headers["Location"])
    page.cookies.extend(started.cookies)
    page.cookies.append(
        expired_cookie(LOGIN_COOKIE, secure=settings.ui_secure_cookies, path=CALLBACK_PATH)
    )
    return page


def cognito_logout_url(origin: str) -> str | None:
    """Where to end the Cognito session too (its `/logout`, back to the signed-out page)."""
    config = cognito_config()
    if config is None:
        return None
    query = urlencode({"client_id": config.client_id, "logout_uri": f"{origin}{SIGNED_OUT_PATH}"})
    return f"{config.domain}/logout?{query}"


@router.get(SIGNED_OUT_PATH)
def signed_out() -> Response[str]:
    """After `/logout`; with Cognito, a link that ends the hosted login's session too."""
    origin = request_origin(router.current_event, public_url())
    return render("signed_out.html", cognito_logout=cognito_logout_url(origin))
