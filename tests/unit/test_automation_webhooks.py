"""The webhook allow-list (scheme, host, port), the address check (public addresses
only) and the sender connecting to the address it checked. No real DNS: each test
injects its resolver."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stratoflow.automations.webhooks import (
    ActionError,
    WebhookNotAllowed,
    WebhookRequest,
    WebhookSender,
    address_problem,
    check_url,
)

ALLOWED = ("hooks.example.com", "*.corp.example", "alt.example:8443", "http://legacy.example")
PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "https://HOOKS.example.com.:443/in",
        "https://a.b.corp.example/x?y=1",
        "https://alt.example:8443/",
        "http://legacy.example/in",
        "http://legacy.example:80/in",
    ],
)
def test_allowed_urls(url: str):
    assert check_url(url, ALLOWED).geturl() == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://evil.example/", "'evil.example' refused: the host is not in"),
        ("https://corp.example/", "the host is not in"),  # *.corp.example: subdomains only
        ("https://hooks.example.com.evil.example/", "the host is not in"),
        (
            "http://hooks.example.com/",
            "plain http sends the request unencrypted. Use an https URL, or list "
            "'http://hooks.example.com' in STRATOFLOW_WEBHOOK_ALLOWED_HOSTS",
        ),
        (
            "https://hooks.example.com:8443/",
            "port 8443 is not allowed for it; list 'hooks.example.com:8443'",
        ),
        ("https://alt.example/", "port 443 is not allowed for it; list 'alt.example:443'"),
        ("https://legacy.example/", "port 443 is not allowed"),  # listed for http only
        ("http://legacy.example:8080/", "list 'http://legacy.example:8080'"),
        ("ftp://hooks.example.com/", "only https URLs are called"),
        ("https://user:pw@hooks.example.com/", "send them in a header"),
        ("https://hooks.example.com:99999/", "invalid port"),
    ],
)
def test_refused_urls_say_what_to_change(url: str, expected: str):
    with pytest.raises(WebhookNotAllowed) as caught:
        check_url(url, ALLOWED)
    assert expected in str(caught.value)


def test_an_empty_list_allows_nothing_and_a_bad_entry_is_named():
    with pytest.raises(WebhookNotAllowed, match="empty, so no host is allowed"):
        check_url("https://hooks.example.com/", ())
    with pytest.raises(WebhookNotAllowed, match="entry 'ftp://x': only https:// or http://"):
        check_url("https://hooks.example.com/", ("ftp://x",))
    with pytest.raises(WebhookNotAllowed, match="entry 'x:port' is not host"):
        check_url("https://hooks.example.com/", ("x:port",))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the instance metadata service
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6: checked as the IPv4
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("100.64.0.1", "not a public address"),  # shared (carrier NAT)
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, kind: str):
    problem = address_problem(address)
    assert problem is not None and kind in problem


@pytest.mark.parametrize("address", [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address: str):
    assert address_problem(address) is None


class Recorder:
    """A connector that records where it was asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.addresses: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.addresses.append(address)
        raise ConnectionRefusedError("no network in tests")


def request(url: str) -> WebhookRequest:
    return WebhookRequest("POST", url, {}, b"{}", 5)


def test_a_host_with_any_address_that_is_not_public_is_refused_before_connecting():
    connect = Recorder()
    sender = WebhookSender(resolver=lambda host, port: [PUBLIC, "10.0.0.7"], connect=connect)
    with pytest.raises(WebhookNotAllowed) as caught:
        sender(request("https://hooks.example.com/in"))
    assert str(caught.value) == (
        "call-webhook to 'hooks.example.com' refused: it resolves to 10.0.0.7 is a private "
        "address; webhooks only go to public addresses."
    )
    assert connect.addresses == []


def test_the_sender_connects_to_the_address_it_checked_not_a_new_resolution():
    """DNS rebinding: a second resolution would answer 127.0.0.1; there is none."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return next(answers)

    connect = Recorder()
    sender = WebhookSender(resolver=resolver, connect=connect)
    with pytest.raises(ActionError, match="ConnectionRefusedError"):
        sender(request("https://alt.example:8443/in"))
    assert calls == [("alt.example", 8443)]
    assert connect.addresses == [(PUBLIC, 8443)]


def test_a_name_that_does_not_resolve_is_an_action_error():
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ActionError, match=r"'nowhere\.example' does not resolve"):
        WebhookSender(resolver=resolver)(request("https://nowhere.example/"))


@pytest.fixture
def local_server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append(
                {"path": self.path, "host": self.headers["Host"], "body": self.rfile.read(length)}
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def test_the_request_goes_to_the_checked_address_with_the_host_name(
    local_server: tuple[int, list[dict[str, Any]]],
):
    port, received = local_server
    # The local server is on loopback, which the default check refuses: this test's
    # check lets it through, to see what arrives.
    sender = WebhookSender(resolver=lambda host, port: ["127.0.0.1"], check=lambda a: None)
    status = sender(request(f"http://hooks.test:{port}/in?x=1"))
    assert status == 204
    assert received == [{"path": "/in?x=1", "host": f"hooks.test:{port}", "body": b"{}"}]


def test_the_default_check_refuses_the_local_server(local_server: tuple[int, list[Any]]):
    port, received = local_server
    sender = WebhookSender(resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(WebhookNotAllowed, match=r"127\.0\.0\.1 is a loopback address"):
        sender(request(f"http://hooks.test:{port}/in"))
    assert received == []
