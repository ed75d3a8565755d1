"""Signing in with Cognito's hosted login as in a stack, through real HTTP: the UI (the
dev server, so Lambda Function URL events for the API Lambda's handler) reads its
sign-in settings from the SSM parameter the stack writes, and exchanges the code over
HTTP at a fake Cognito token endpoint (a local server) that checks the PKCE verifier,
the client and the redirect URI as Cognito does. (tests/functional/test_ui_cognito.py
covers the same routes with the settings from the environment and a stubbed endpoint.)

The test plays the browser and the hosted login's part: it follows `/auth/login` to the
authorize URL, has the fake Cognito issue a code for that request, and comes back to
`/auth/callback`."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from stratoflow import resources
from stratoflow.settings import env_var, get_settings
from stratoflow.ui.cognito import LOGIN_COOKIE
from stratoflow.ui.devserver import serve_ui
from stratoflow.ui.sign_in_settings import SignInParameter
from tests.functional._ui import Browser, Page
from tests.integration._deploy_fixtures import Installation, installation  # noqa: F401

CLIENT_ID = "ui-client-for-tests"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool1"


@dataclass
class Grant:
    claims: dict[str, Any]
    challenge: str
    redirect_uri: str


@dataclass
class FakeCognito:
    """The token endpoint of a user pool's domain: one code per sign-in, exchanged once,
    with the verifier of the challenge it was issued for and the same redirect URI."""

    base: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)
    exchanges: list[dict[str, str]] = field(default_factory=list)

    def sign_in(self, authorize_url: str, claims: dict[str, Any]) -> dict[str, str]:
        """The hosted login's answer to a user who signed in: the callback's query."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["client_id"] == CLIENT_ID and query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(claims, query["code_challenge"], query["redirect_uri"])
        return {"code": code, "state": query["state"]}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.exchanges.append(form)
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_grant"}
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant"}
        return 200, {
            "id_token": jwt(grant.claims),
            "access_token": jwt({"token_use": "access"}),
            "token_type": "Bearer",
            "expires_in": 3600,
        }


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'test'})}.{part(claims)}.bm90LWNoZWNrZWQ"


def _serve(cognito: FakeCognito) -> ThreadingHTTPServer:
    class TokenEndpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path != "/oauth2/token":
                status, answer = 404, {"error": "not_found"}
            else:
                status, answer = cognito.token(form)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class SignIn:
    installation: Installation
    base: str
    cognito: FakeCognito

    def claims(self, groups: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "token_use": "id",
            "exp": int(time.time()) + 3600,
            "email": "ada@example.com",
            "cognito:username": "ada",
            "cognito:groups": groups,
            **extra,
        }

    def start(self, browser: Browser, next_path: str = "/flow-runs") -> str:
        """`/auth/login`: the authorize URL it sends the browser to."""
        page = browser.get(f"/auth/login?{urlencode({'next': next_path})}")
        assert page.status == 302, page.text
        assert page.location.startswith(f"{self.cognito.base}/oauth2/authorize?")
        return page.location

    def callback(self, browser: Browser, query: dict[str, str]) -> Page:
        return browser.get(f"/auth/callback?{urlencode(query)}")


@pytest.fixture
def sign_in(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> Iterator[SignIn]:
    cognito = FakeCognito()
    server = _serve(cognito)
    cognito.base = f"http://127.0.0.1:{server.server_address[1]}"
    parameter = resources.ui_sign_in_parameter_name(installation.platform.settings.queue_prefix)
    monkeypatch.setenv(env_var("ui_sign_in_parameter"), parameter)
    monkeypatch.setenv(env_var("ui_secure_cookies"), "false")
    get_settings.cache_clear()
    try:
        with serve_ui() as base:
            document = SignInParameter(
                domain=cognito.base,
                client_id=CLIENT_ID,
                issuer=ISSUER,
                public_url=base,
                operators_group=resources.UI_OPERATORS_GROUP,
                viewers_group=resources.UI_VIEWERS_GROUP,
            )
            installation.session.client("ssm").put_parameter(
                Name=parameter, Value=document.model_dump_json(), Type="String"
            )
            yield SignIn(installation, base, cognito)
    finally:
        server.shutdown()
        server.server_close()
        get_settings.cache_clear()


def _finish(sign_in: SignIn, browser: Browser, groups: list[str], **claims: Any) -> Page:
    authorize = sign_in.start(browser)
    return sign_in.callback(
        browser, sign_in.cognito.sign_in(authorize, sign_in.claims(groups, **claims))
    )


def test_a_page_without_a_session_goes_to_the_hosted_login(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    page = browser.get("/flow-runs?state=FAILED")
    assert page.status == 302
    assert page.location == "/auth/login?next=%2Fflow-runs%3Fstate%3DFAILED"
    page = browser.get("/auth/login?next=%2Fflow-runs")
    query = parse_qs(urlsplit(page.location).query)
    assert query["redirect_uri"] == [f"{sign_in.base}/auth/callback"]
    # The pending sign-in: for the callback only, ten minutes, sent on Cognito's redirect
    # back (Lax), never readable by script.
    (cookie,) = page.cookies
    assert cookie.startswith(f"{LOGIN_COOKIE}=")
    for attribute in ("Path=/auth/callback", "Max-Age=600", "HttpOnly", "SameSite=Lax"):
        assert attribute in cookie, attribute
    # htmx requests are told to reload instead (which then goes to the login).
    page = browser.get("/flow-runs", headers={"HX-Request": "true"})
    assert page.status == 401 and page.headers["hx-refresh"] == "true"


def test_an_operator_signs_in_and_lands_on_the_page_they_asked_for(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    authorize = sign_in.start(browser, "/flow-runs?state=FAILED")
    login_cookie = browser.cookies[LOGIN_COOKIE]
    page = sign_in.callback(
        browser, sign_in.cognito.sign_in(authorize, sign_in.claims(["operators"]))
    )
    assert page.status == 200, page.text
    # A page that moves on itself (a same-site navigation carries the Strict cookie).
    assert 'content="0;url=/flow-runs?state=FAILED"' in page.text
    session, cleared = sorted(page.cookies, key=lambda c: not c.startswith("stratoflow_session"))
    assert "HttpOnly" in session and "SameSite=Strict" in session
    assert cleared.startswith(f"{LOGIN_COOKIE}=;") and "Max-Age=0" in cleared
    assert LOGIN_COOKIE not in browser.cookies
    (exchange,) = sign_in.cognito.exchanges
    assert exchange["code_verifier"] and exchange["redirect_uri"] == f"{sign_in.base}/auth/callback"
    page = browser.get("/flow-runs?state=FAILED")
    assert page.status == 200 and 'data-role="operator"' in page.text
    assert "ada@example.com" in page.text
    # The pending login's cookie was for this sign-in only.
    replay = Browser(sign_in.base)
    replay.cookies[LOGIN_COOKIE] = login_cookie
    assert sign_in.callback(replay, {"code": "used", "state": "x"}).status == 401


def test_members_of_the_viewers_group_get_viewer_sessions(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    assert _finish(sign_in, browser, ["viewers"]).status == 200
    assert 'data-role="viewer"' in browser.get("/").text


def test_a_user_in_neither_group_gets_no_session(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    page = _finish(sign_in, browser, ["someone-elses-group"])
    assert page.status == 403
    assert "may not use this UI" in page.text and "viewers" in page.text
    assert "stratoflow_session" not in browser.cookies


def test_a_callback_with_another_state_is_refused_before_any_exchange(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    authorize = sign_in.start(browser)
    query = sign_in.cognito.sign_in(authorize, sign_in.claims(["operators"]))
    # Login CSRF: an attacker's own code and state, in a link the victim opens.
    page = sign_in.callback(browser, {**query, "state": "attackers-state"})
    assert page.status == 401 and "state does not match" in page.text
    # No cookie at all (a link opened in a browser that never went to /auth/login).
    page = sign_in.callback(Browser(sign_in.base), query)
    assert page.status == 401
    assert sign_in.cognito.exchanges == []
    assert "stratoflow_session" not in browser.cookies


def test_a_token_for_another_app_client_is_refused(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    page = _finish(sign_in, browser, ["operators"], aud="another-client")
    assert page.status == 401 and "another app client" in page.text
    assert "stratoflow_session" not in browser.cookies


def test_an_expired_token_is_refused(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    expired = int(time.time()) - 1
    page = _finish(sign_in, browser, ["operators"], exp=expired)
    assert page.status == 401 and "expired" in page.text
    assert "stratoflow_session" not in browser.cookies


def test_a_token_of_another_user_pool_is_refused(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    other = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"
    page = _finish(sign_in, browser, ["operators"], iss=other)
    assert page.status == 401 and "another user pool" in page.text


def test_a_refused_code_and_a_cognito_error_end_in_a_sign_in_page(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    authorize = sign_in.start(browser)
    query = sign_in.cognito.sign_in(authorize, sign_in.claims(["operators"]))
    page = sign_in.callback(browser, {**query, "code": "not-issued"})
    assert page.status == 401 and "Cognito refused the sign-in (invalid_grant)" in page.text
    page = sign_in.callback(browser, {"error": "<b>access_denied</b>"})
    assert page.status == 401 and "&lt;b&gt;access_denied&lt;/b&gt;" in page.text


def test_a_code_is_exchanged_with_its_own_verifier_only(sign_in: SignIn) -> None:
    """PKCE: a code issued for one browser's sign-in (its challenge) cannot be redeemed
    by another browser's pending sign-in (its verifier)."""
    victim, attacker = Browser(sign_in.base), Browser(sign_in.base)
    stolen = sign_in.cognito.sign_in(sign_in.start(victim), sign_in.claims(["operators"]))
    attackers_query = sign_in.cognito.sign_in(sign_in.start(attacker), sign_in.claims([]))
    page = sign_in.callback(attacker, {**attackers_query, "code": stolen["code"]})
    assert page.status == 401 and "PKCE mismatch" in page.text
    assert "stratoflow_session" not in attacker.cookies


def test_the_signed_out_page_links_to_the_hosted_logout_of_the_public_url(
    sign_in: SignIn,
) -> None:
    browser = Browser(sign_in.base)
    _finish(sign_in, browser, ["operators"])
    token = browser.get("/").csrf_token()
    page = browser.post("/logout", form={"csrf_token": token})
    assert page.status == 303 and page.location == "/auth/signed-out"
    assert browser.get("/").status == 302  # to the login again
    page = browser.get("/auth/signed-out")
    assert page.status == 200 and 'href="/auth/login"' in page.text
    logout = f"{sign_in.cognito.base}/logout?" + urlencode(
        {"client_id": CLIENT_ID, "logout_uri": f"{sign_in.base}/auth/signed-out"}
    )
    assert f'href="{logout}"' in page.text.replace("&amp;", "&")


def test_a_boosted_form_navigates_with_hx_redirect(sign_in: SignIn) -> None:
    """htmx posts forms (boosted, so that their body is signed): their redirect comes back
    as HX-Redirect, on which htmx navigates as after a plain form's POST."""
    browser = Browser(sign_in.base)
    _finish(sign_in, browser, ["viewers"])
    page = browser.post(
        "/logout",
        form={"csrf_token": browser.get("/").csrf_token()},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert page.status == 200 and "location" not in page.headers
    assert page.headers["hx-redirect"] == "/auth/signed-out"
    assert "stratoflow_session" not in browser.cookies


def test_a_post_without_the_payload_hash_is_refused_as_in_aws(sign_in: SignIn) -> None:
    browser = Browser(sign_in.base)
    _finish(sign_in, browser, ["operators"])
    token = browser.get("/").csrf_token()
    page = browser.post("/logout", form={"csrf_token": token}, headers={"x-amz-content-sha256": ""})
    assert page.status == 403 and "x-amz-content-sha256" in page.text
    wrong = hashlib.sha256(b"csrf_token=other").hexdigest()
    page = browser.post(
        "/logout", form={"csrf_token": token}, headers={"x-amz-content-sha256": wrong}
    )
    assert page.status == 403
    assert browser.get("/").status == 200  # still signed in: the handler never ran


def test_behind_cloudfront_the_public_url_not_the_host_is_this_sites_origin(
    sign_in: SignIn,
) -> None:
    """Behind CloudFront the function sees its Function URL's Host (CloudFront does not
    pass the viewer's on): the redirect URI and the Origin check use the public URL from
    the sign-in parameter instead."""
    function_url_host = {"Host": "abc123.lambda-url.us-east-1.on.aws"}
    browser = Browser(sign_in.base)
    page = browser.get("/auth/login", headers=function_url_host)
    query = parse_qs(urlsplit(page.location).query)
    assert query["redirect_uri"] == [f"{sign_in.base}/auth/callback"]
    _finish(sign_in, browser, ["operators"])
    token = browser.get("/").csrf_token()
    refused = browser.post(
        "/logout",
        form={"csrf_token": token},
        headers={**function_url_host, "Origin": "https://abc123.lambda-url.us-east-1.on.aws"},
    )
    assert refused.status == 403
    page = browser.post(
        "/logout", form={"csrf_token": token}, headers={**function_url_host, "Origin": sign_in.base}
    )
    assert page.status == 303
