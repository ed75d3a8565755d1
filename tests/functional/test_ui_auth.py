"""Signing in to the UI, roles and CSRF, through real HTTP requests turned into Lambda
Function URL events (stratoflow.ui.devserver) for the API Lambda's handler."""

from __future__ import annotations

from stratoflow.models import FlowRun
from tests.functional._ui import VIEWER_TOKEN, Ui, add_run, installation, ui  # noqa: F401


def _running_run(ui: Ui) -> FlowRun:
    return add_run(ui.installation)


def _state_name(ui: Ui, flow_run_id: str) -> str:
    return ui.installation.services.backend.read_flow_run(flow_run_id).state_name


def test_pages_need_a_session_and_the_login_link_opens_one(ui: Ui) -> None:
    browser = ui.browser(role=None)
    for path in ("/", "/flow-runs", "/flow-runs/anything"):
        page = browser.get(path)
        assert page.status == 401
        assert "login link" in page.text and 'id="runs-table"' not in page.text
    assert browser.get("/login?token=wrong").status == 401
    page = browser.get("/login?token=operator-token-for-tests&next=/flow-runs")
    assert page.status == 303 and page.location == "/flow-runs"
    (cookie,) = page.cookies
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = browser.get("/flow-runs")
    assert page.status == 200 and 'data-role="operator"' in page.text


def test_the_login_link_never_redirects_to_another_site(ui: Ui) -> None:
    page = ui.browser(role=None).get(
        "/login?token=operator-token-for-tests&next=https://evil.example/"
    )
    assert page.status == 303 and page.location == "/"


def test_htmx_without_a_session_reloads_the_page(ui: Ui) -> None:
    page = ui.browser(role=None).get("/flow-runs?fragment=rows", headers={"HX-Request": "true"})
    assert page.status == 401 and page.headers["hx-refresh"] == "true"


def test_every_response_carries_the_security_headers(ui: Ui) -> None:
    browser = ui.browser()
    for path in ("/", "/flow-runs", "/static/app.css", "/no-such-page", "/login?token=x"):
        headers = browser.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_an_operator_cancels_with_the_pages_csrf_token(ui: Ui) -> None:
    run = _running_run(ui)
    browser = ui.browser()
    token = browser.get(f"/flow-runs/{run.id}").csrf_token()
    page = browser.post(f"/flow-runs/{run.id}/cancel", form={"csrf_token": token})
    assert page.status == 303 and page.location == f"/flow-runs/{run.id}"
    assert _state_name(ui, run.id) == "Cancelling"


def test_htmx_sends_the_token_in_a_header(ui: Ui) -> None:
    run = _running_run(ui)
    browser = ui.browser()
    token = browser.get("/").csrf_token()
    page = browser.post(
        f"/flow-runs/{run.id}/cancel",
        form={},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert page.status == 303
    assert _state_name(ui, run.id) == "Cancelling"


def test_a_missing_or_wrong_csrf_token_changes_nothing(ui: Ui) -> None:
    run = _running_run(ui)
    browser = ui.browser()
    for form in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}):
        page = browser.post(f"/flow-runs/{run.id}/cancel", form=form)
        assert page.status == 403
        assert "CSRF" in page.text
    assert _state_name(ui, run.id) == "Running"


def test_a_token_of_another_session_is_refused(ui: Ui) -> None:
    run = _running_run(ui)
    theirs = ui.browser().get("/").csrf_token()
    page = ui.browser().post(f"/flow-runs/{run.id}/cancel", form={"csrf_token": theirs})
    assert page.status == 403
    assert _state_name(ui, run.id) == "Running"


def test_a_request_from_another_origin_changes_nothing(ui: Ui) -> None:
    run = _running_run(ui)
    browser = ui.browser()
    token = browser.get("/").csrf_token()
    page = browser.post(
        f"/flow-runs/{run.id}/cancel",
        form={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert page.status == 403
    assert _state_name(ui, run.id) == "Running"


def test_a_viewer_reads_but_cannot_cancel(ui: Ui) -> None:
    run = _running_run(ui)
    browser = ui.browser(role="viewer")
    page = browser.get(f"/flow-runs/{run.id}")
    assert page.status == 200 and 'data-role="viewer"' in page.text
    page = browser.post(f"/flow-runs/{run.id}/cancel", form={"csrf_token": page.csrf_token()})
    assert page.status == 403
    assert "viewers cannot" in page.text
    assert _state_name(ui, run.id) == "Running"


def test_signing_out_ends_the_session(ui: Ui) -> None:
    browser = ui.browser(role="viewer")
    token = browser.get("/").csrf_token()
    assert browser.post("/logout", form={"csrf_token": "wrong"}).status == 403
    page = browser.post("/logout", form={"csrf_token": token})
    assert page.status == 303 and page.location == "/auth/signed-out"
    assert "stratoflow_session" not in browser.cookies
    assert browser.get("/").status == 401


def test_a_stolen_cookie_stops_working_after_sign_out(ui: Ui) -> None:
    browser = ui.browser()
    cookie = dict(browser.cookies)
    browser.post("/logout", form={"csrf_token": browser.get("/").csrf_token()})
    thief = ui.browser(role=None)
    thief.cookies.update(cookie)
    assert thief.get("/").status == 401


def test_viewer_token_opens_a_viewer_session(ui: Ui) -> None:
    browser = ui.browser(role=None)
    browser.get(f"/login?token={VIEWER_TOKEN}")
    assert 'data-role="viewer"' in browser.get("/").text
