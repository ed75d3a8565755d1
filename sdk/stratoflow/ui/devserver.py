"""The UI on 127.0.0.1 for `strato dev` and the tests: a stdlib HTTP server that turns
each request into the event a Lambda Function URL sends (payload format 2.0) and calls
the same `handler` the API Lambda runs, so that local use and the tests exercise the
real event and response shapes.

It also refuses what CloudFront's origin access control in front of the Function URL
refuses (docs/ui.md): a POST or PUT whose `x-amz-content-sha256` header is not the
SHA-256 of its body (the browser's page script adds it), so a form that would fail in
AWS fails here too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from stratoflow.ui.app import handler as ui_handler

logger = logging.getLogger("stratoflow.ui")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded")
"""Bodies Function URLs pass as text; any other is base64-encoded (`isBase64Encoded`)."""
MAX_BODY_BYTES = 6 * 1024 * 1024
"""Lambda's synchronous payload limit."""
PAYLOAD_HASH_HEADER = "x-amz-content-sha256"
SIGNED_PAYLOAD_METHODS = frozenset({"POST", "PUT"})
"""Methods whose body CloudFront's origin access control signs with the hash the browser
sends: Lambda accepts no unsigned payload."""


def payload_hash_problem(method: str, headers: Any, body: bytes) -> str | None:
    """Why AWS (CloudFront with origin access control, then the Function URL) would
    refuse this request for its payload hash; None when it would not."""
    if method.upper() not in SIGNED_PAYLOAD_METHODS:
        return None
    given = (headers.get(PAYLOAD_HASH_HEADER) or "").strip().lower()
    expected = hashlib.sha256(body).hexdigest()
    if not given:
        return (
            f"A {method} through CloudFront to a Lambda Function URL needs the "
            f"{PAYLOAD_HASH_HEADER} header (the SHA-256 of the body): send forms with htmx "
            "(hx-post, or hx-boost on the form), whose request static/app.js signs."
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return f"The {PAYLOAD_HASH_HEADER} header is not the SHA-256 of the request body."
    return None


class LambdaContextStub:
    """The attributes of Lambda's context object that the handler reads."""

    function_name = "stratoflow-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:stratoflow-api"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/stratoflow-api"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def function_url_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The Function URL event of one HTTP request (docs.aws.amazon.com/lambda/latest/dg/
    urls-invocation.html#urls-payloads): lower-case headers (repeats joined with commas),
    cookies apart, the raw query string and the body as text or base64."""
    url = urlsplit(target)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    query: dict[str, str] = {}
    for pair in filter(None, url.query.split("&")):
        key, _, value = pair.partition("=")
        query[key] = f"{query[key]},{value}" if key in query else value
    content_type = joined.get("content-type", "")
    is_text = content_type.startswith(TEXT_TYPES)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": joined.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": url.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": bool(body) and not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
    return event


def _request_handler(
    handler: Handler, lock: threading.Lock, *, check_payload_hash: bool
) -> type[BaseHTTPRequestHandler]:
    class FunctionUrlHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stratoflow-ui"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413, "Request body too large")
                return
            body = self.rfile.read(length) if length else b""
            problem = payload_hash_problem(self.command, self.headers, body)
            if check_payload_hash and problem is not None:
                # As the Function URL answers a signature that does not match.
                self._respond(
                    {
                        "statusCode": 403,
                        "headers": {"Content-Type": "application/json"},
                        "body": json.dumps({"message": problem}),
                    }
                )
                return
            headers = [(k, v) for k, v in self.headers.items()]
            headers.append(("x-forwarded-proto", "http"))
            event = function_url_event(
                self.command, self.path, headers, body, source_ip=self.client_address[0]
            )
            # Lambda gives each instance one request at a time, and powertools' resolver
            # keeps the request in class attributes: one at a time here too.
            try:
                with lock:
                    result = handler(event, LambdaContextStub())
            except Exception:
                # What a Function URL answers when its function raises; the traceback
                # goes to the log.
                logger.exception("The UI handler failed on %s %s", self.command, self.path)
                result = {"statusCode": 502, "body": "Internal Server Error"}
            self._respond(result)

        def _respond(self, result: dict[str, Any]) -> None:
            raw = result.get("body") or ""
            payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
            self.send_response(int(result.get("statusCode", 200)))
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, str(value))
            for cookie in result.get("cookies") or []:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: `strato dev` has its own output."""

    return FunctionUrlHandler


@contextmanager
def serve_ui(
    handler: Handler | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    check_payload_hash: bool = True,
) -> Iterator[str]:
    """Serve the UI (or another Function URL `handler`) until the block ends; yields its
    base URL (port 0: a free one). `check_payload_hash`: refuse POST and PUT requests
    without the right `x-amz-content-sha256`, as AWS would."""
    request_handler = _request_handler(
        handler or ui_handler, threading.Lock(), check_payload_hash=check_payload_hash
    )
    server = ThreadingHTTPServer((host, port), request_handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="stratoflow-ui", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
