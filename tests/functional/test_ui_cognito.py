"""Signing in with Cognito's hosted login (authorization code + PKCE), through the UI's
real handler: Cognito's token endpoint is replaced by a stub that checks what the UI
sends and answers with an ID token."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stratoflow.settings import get_settings
from stratoflow.ui import cognito
from stratoflow.ui.cognito import CognitoConfig, SignInFailed, code_challenge, id_token_claims
from tests.functional._ui import Browser, Ui, installation, ui  # noqa: F401

DOMAIN = "https://stratoflow-test.auth.us-east-1.amazoncognito.com"
CLIENT = "client-123"
POOL = "us-east-1_TestPool"
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"
CONFIG = CognitoConfig(DOMAIN, CLIENT, ISSUER, "operators")


def jwt(claims: Mapping[str, Any]) -> str:
    def part(data: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


def claims(**changes: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "exp": int(time.time()) + 3600,
        "email": "ada@example.com",
        "cognito:groups": ["operators"],
        **changes,
    }


@pytest.fixture
def hosted(ui: Ui, monkeypatch: pytest.MonkeyPatch) -> Ui:
    monkeypatch.setenv("STRATOFLOW_UI_COGNITO_DOMAIN", DOMAIN)
    monkeypatch.setenv("STRATOFLOW_UI_COGNITO_CLIENT_ID", CLIENT)
    monkeypatch.setenv("STRATOFLOW_UI_COGNITO_USER_POOL_ID", POOL)
    get_settings.cache_clear()
    return ui


class TokenEndpoint:
    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, fields: Mapping[str, str]) -> Mapping[str, Any]:
        self.calls.append((url, dict(fields)))
        return self.answer


def start_login(browser: Browser, next_path: str = "/flow-runs") -> dict[str, str]:
    page = browser.get("/flow-runs?window=24h" if next_path == "/flow-runs" else next_path)
    assert page.status == 302
    assert page.location == "/auth/login?next=%2Fflow-runs%3Fwindow%3D24h"
    page = browser.get(page.location)
    assert page.status == 302
    target = urlsplit(page.location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{DOMAIN}/oauth2/authorize"
    (cookie,) = page.cookies
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/auth/callback" in cookie
    return {k: v[0] for k, v in parse_qs(target.query).items()}


def test_an_operator_signs_in_with_pkce(hosted: Ui, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = TokenEndpoint({"id_token": jwt(claims()), "access_token": "a"})
    monkeypatch.setattr(cognito, "_post_form", endpoint)
    browser = hosted.browser(role=None)
    query = start_login(browser)
    assert query["response_type"] == "code" and query["client_id"] == CLIENT
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == f"{hosted.base}/auth/callback"

    page = browser.get(f"/auth/callback?code=the-code&state={query['state']}")
    assert page.status == 200
    assert 'content="0;url=/flow-runs?window=24h"' in page.text
    ((url, fields),) = endpoint.calls
    assert url == f"{DOMAIN}/oauth2/token"
    assert fields["grant_type"] == "authorization_code" and fields["code"] == "the-code"
    assert code_challenge(fields["code_verifier"]) == query["code_challenge"]
    assert "client_secret" not in fields
    assert "stratoflow_login" not in browser.cookies  # used once
    home = browser.get("/")
    assert home.status == 200
    assert 'data-role="operator"' in home.text and "ada@example.com" in home.text


def test_someone_outside_the_operators_group_is_a_viewer(
    hosted: Ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        cognito, "_post_form", TokenEndpoint({"id_token": jwt(claims(**{"cognito:groups": []}))})
    )
    browser = hosted.browser(role=None)
    query = start_login(browser)
    browser.get(f"/auth/callback?code=c&state={query['state']}")
    assert 'data-role="viewer"' in browser.get("/").text


def test_a_callback_whose_state_does_not_match_signs_nobody_in(
    hosted: Ui, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = TokenEndpoint({"id_token": jwt(claims())})
    monkeypatch.setattr(cognito, "_post_form", endpoint)
    browser = hosted.browser(role=None)
    start_login(browser)
    page = browser.get("/auth/callback?code=c&state=forged")
    assert page.status == 401 and "state does not match" in page.text
    stranger = hosted.browser(role=None)  # no login cookie at all
    assert stranger.get("/auth/callback?code=c&state=x").status == 401
    assert endpoint.calls == []
    assert browser.get("/").status == 302


def test_cognitos_refusal_is_shown(hosted: Ui) -> None:
    page = hosted.browser(role=None).get("/auth/callback?error=access_denied")
    assert page.status == 401 and "access_denied" in page.text


def test_signed_out_links_to_the_hosted_logout(hosted: Ui) -> None:
    page = hosted.browser(role=None).get("/auth/signed-out")
    assert f"{DOMAIN}/logout?client_id={CLIENT}" in page.text.replace("&amp;", "&")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"}, "another user pool"),
        ({"aud": "someone-else"}, "another app client"),
        ({"token_use": "access"}, "not an ID token"),
        ({"exp": int(time.time()) - 1}, "expired"),
        ({"exp": "tomorrow"}, "expired"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SignInFailed, match=message):
        id_token_claims(jwt(claims(**changes)), CONFIG)
    assert id_token_claims(jwt(claims(aud=["x", CLIENT])), CONFIG)["email"] == "ada@example.com"
    with pytest.raises(SignInFailed, match="not a JWT"):
        id_token_claims("abc", CONFIG)
    with pytest.raises(SignInFailed, match="cannot be read"):
        id_token_claims("a.!!!.c", CONFIG)


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_token_endpoint_must_be_https() -> None:
    with pytest.raises(SignInFailed, match="https"):
        cognito.post_form("http://login.example/oauth2/token", {})
