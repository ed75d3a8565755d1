"""UI sessions (stratoflow.ui.sessions): the table items, expiry, the cookie, and the
checks every state-changing request passes (CSRF token, Origin, role)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import LambdaFunctionUrlEvent
from moto import mock_aws

from stratoflow import resources
from stratoflow.clock import FakeClock
from stratoflow.resources import ResourceNames
from stratoflow.ui.devserver import function_url_event
from stratoflow.ui.http import local_path
from stratoflow.ui.sessions import (
    AccessDenied,
    SessionStore,
    UiSession,
    check_change_allowed,
    is_public,
    request_cookie,
    session_cookie,
)

TABLE = "stratoflow"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        names = ResourceNames(
            table=TABLE,
            results_bucket="r-bucket",
            code_bucket="c-bucket",
            runs_log_group="/stratoflow/runs",
            queue_prefix="stratoflow",
        )
        resources.provision(session, names)
        yield session.client("dynamodb")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(dynamodb: Any, clock: FakeClock) -> SessionStore:
    return SessionStore(dynamodb, TABLE, clock)


def test_a_session_reads_back_until_it_expires(store: SessionStore, clock: FakeClock) -> None:
    session_id, session = store.create("ada", "operator", timedelta(hours=1))
    assert store.read(session_id) == session
    assert session.is_operator and len(session.csrf_token) >= 40
    clock.sleep(3599)
    assert store.read(session_id) == session
    clock.sleep(2)  # DynamoDB's TTL deletes late: the expiry is checked on read
    assert store.read(session_id) is None


def test_the_table_holds_only_a_hash_of_the_session_id(store: SessionStore, dynamodb: Any) -> None:
    session_id, session = store.create("ada", "viewer", timedelta(hours=1))
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert session_id not in str(items)
    (item,) = [i for i in items if i["pk"]["S"].startswith("UISESSION#")]
    assert item["pk"]["S"] == resources.ui_session_key(session_id)["pk"]
    assert item["role"]["S"] == "viewer" and item["csrf_token"]["S"] == session.csrf_token
    assert int(item[resources.TTL_ATTRIBUTE]["N"]) == int(session.expires_at.timestamp())


def test_unknown_deleted_and_malformed_sessions_are_none(
    store: SessionStore, dynamodb: Any
) -> None:
    assert store.read("nope") is None
    assert store.read("") is None
    assert store.read("x" * 1000) is None
    session_id, _ = store.create("ada", "operator", timedelta(hours=1))
    store.delete(session_id)
    assert store.read(session_id) is None
    forged = resources.ui_session_key("forged")
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": forged["pk"]},
            "sk": {"S": forged["sk"]},
            "user": {"S": "eve"},
            "role": {"S": "admin"},  # not a role
            "csrf_token": {"S": "t"},
            "expires_at": {"N": "99999999999"},
        },
    )
    assert store.read("forged") is None


def test_an_unknown_role_is_refused(store: SessionStore) -> None:
    with pytest.raises(ValueError, match="Unknown role"):
        store.create("ada", "admin", timedelta(hours=1))  # type: ignore[arg-type]


def test_the_cookie_is_httponly_strict_and_secure_unless_local() -> None:
    text = str(session_cookie("abc", secure=True, max_age=timedelta(hours=2)))
    assert text.startswith("stratoflow_session=abc")
    assert "HttpOnly" in text and "Secure" in text and "SameSite=Strict" in text
    assert "Max-Age=7200" in text
    assert "Secure" not in str(session_cookie("abc", secure=False, max_age=timedelta(hours=2)))


def _event(
    method: str = "POST",
    path: str = "/flow-runs/r1/cancel",
    *,
    form: str | None = None,
    headers: dict[str, str] | None = None,
) -> LambdaFunctionUrlEvent:
    sent = [("Host", "127.0.0.1:8000"), ("x-forwarded-proto", "http")]
    sent += list((headers or {}).items())
    body = b""
    if form is not None:
        sent.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = form.encode()
    return LambdaFunctionUrlEvent(function_url_event(method, path, sent, body))


OPERATOR = UiSession("ada", "operator", "tok-123", FakeClock().now())
VIEWER = UiSession("bob", "viewer", "tok-456", FakeClock().now())


def test_a_change_with_the_sessions_token_passes() -> None:
    check_change_allowed(_event(form="csrf_token=tok-123"), OPERATOR, public_url=None)
    check_change_allowed(_event(headers={"X-CSRF-Token": "tok-123"}), OPERATOR, public_url=None)
    check_change_allowed(
        _event(form="csrf_token=tok-123", headers={"Origin": "http://127.0.0.1:8000"}),
        OPERATOR,
        public_url=None,
    )


@pytest.mark.parametrize(
    "event",
    [
        _event(),  # no token
        _event(form="csrf_token="),
        _event(form="csrf_token=tok-999"),
        _event(headers={"X-CSRF-Token": "tok-12"}),
        _event(form="other=tok-123"),
    ],
)
def test_a_missing_or_wrong_csrf_token_is_refused(event: LambdaFunctionUrlEvent) -> None:
    with pytest.raises(AccessDenied, match="CSRF"):
        check_change_allowed(event, OPERATOR, public_url=None)


def test_another_origin_is_refused() -> None:
    event = _event(form="csrf_token=tok-123", headers={"Origin": "https://evil.example"})
    with pytest.raises(AccessDenied, match=r"evil\.example"):
        check_change_allowed(event, OPERATOR, public_url=None)
    with pytest.raises(AccessDenied, match=r"127\.0\.0\.1"):  # behind CloudFront: its URL only
        check_change_allowed(
            _event(form="csrf_token=tok-123", headers={"Origin": "http://127.0.0.1:8000"}),
            OPERATOR,
            public_url="https://d111.cloudfront.net",
        )


def test_a_viewer_may_only_sign_out() -> None:
    with pytest.raises(AccessDenied, match="viewers cannot"):
        check_change_allowed(_event(form="csrf_token=tok-456"), VIEWER, public_url=None)
    check_change_allowed(_event(path="/logout", form="csrf_token=tok-456"), VIEWER, public_url=None)


def test_public_paths_and_local_redirects() -> None:
    assert is_public("/static/app.css") and is_public("/login") and is_public("/auth/callback")
    assert not is_public("/") and not is_public("/flow-runs") and not is_public("/loginx")
    assert local_path("/flow-runs?state=FAILED") == "/flow-runs?state=FAILED"
    for target in ("https://evil.example", "//evil.example", "/\\evil.example", "", None):
        assert local_path(target) == "/"


def test_cookies_come_from_the_events_cookie_list() -> None:
    event = _event(headers={"Cookie": "a=1; stratoflow_session=xyz; b=2"})
    assert event["cookies"] == ["a=1", "stratoflow_session=xyz", "b=2"]
    assert request_cookie(event, "stratoflow_session") == "xyz"
    assert request_cookie(event, "missing") is None
