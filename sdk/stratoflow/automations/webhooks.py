"""Sending webhooks, and the allow-list (STRATOFLOW_WEBHOOK_ALLOWED_HOSTS).

An entry is `host`, `*.example.com` (its subdomains), `host:8443` (another port) or
`http://host[:port]` (plain HTTP to that host: an explicit opt-in per host). A URL is
allowed when its scheme, host and port match an entry: `https` on port 443 unless the
entry names a port; `http` only through an `http://` entry, port 80 unless it names one.

The sender then resolves the host once, refuses it when any of its addresses is not a
public one (private, loopback, link-local, multicast, reserved, unspecified, shared;
IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry), and connects to
the address it checked (TLS still verifies the certificate against the host name): a
DNS answer that changes between the check and the connection (DNS rebinding) cannot
lead the request to another address. Redirects are never followed (an error instead),
and proxies are not used: a proxy would resolve the name itself, unchecked.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from stratoflow.exceptions import StratoflowError

SETTING = "STRATOFLOW_WEBHOOK_ALLOWED_HOSTS"
DEFAULT_PORTS = {"https": 443, "http": 80}


class ActionError(StratoflowError):
    """An action could not do what it was asked (the message says why)."""


class WebhookNotAllowed(ActionError):
    """The webhook's URL is not allowed by STRATOFLOW_WEBHOOK_ALLOWED_HOSTS, or its host
    resolves to an address that is not public."""


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout: float


HttpSender = Callable[[WebhookRequest], int]
"""Sends a request and returns the HTTP status; raises when it fails."""

Resolver = Callable[[str, int], Sequence[str]]
"""The addresses of a host name (an IP address gives itself)."""
Connector = Callable[[tuple[str, int], float], socket.socket]
"""Opens a TCP connection to an address (socket.create_connection)."""
AddressCheck = Callable[[str], str | None]
"""Why an address may not be called, or None when it may."""


# The allow-list


@dataclass(frozen=True)
class AllowedEntry:
    scheme: str
    host: str
    port: int

    def names(self, host: str) -> bool:
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def matches(self, scheme: str, host: str, port: int) -> bool:
        return scheme == self.scheme and port == self.port and self.names(host)


def parse_entry(entry: str) -> AllowedEntry:
    scheme = "https"
    rest = entry.strip().lower()
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if scheme not in DEFAULT_PORTS:
            raise WebhookNotAllowed(
                f"{SETTING} entry {entry!r}: only https:// or http:// may prefix a host."
            )
    rest = rest.rstrip("/")
    host, colon, port = rest.rpartition(":")
    if not colon:
        host, port = rest, ""
    if not host or (port and not port.isdigit()):
        raise WebhookNotAllowed(
            f"{SETTING} entry {entry!r} is not host, *.domain, host:port or http://host[:port]."
        )
    return AllowedEntry(scheme, host.rstrip("."), int(port) if port else DEFAULT_PORTS[scheme])


def check_url(url: str, allowed: tuple[str, ...]) -> SplitResult:
    """The URL, split, when the allow-list allows it; WebhookNotAllowed saying what to
    change when not."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    listed = ", ".join(allowed) if allowed else "empty, so no host is allowed"
    if scheme not in DEFAULT_PORTS:
        raise WebhookNotAllowed(f"call-webhook to {url!r} refused: only https URLs are called.")
    if parts.username is not None or parts.password is not None:
        raise WebhookNotAllowed(
            f"call-webhook to {host!r} refused: a URL may not hold credentials; send them "
            "in a header (headers: {Authorization: ...})."
        )
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise WebhookNotAllowed(f"call-webhook to {url!r} refused: invalid port.") from None
    entries = [parse_entry(entry) for entry in allowed]
    if any(e.matches(scheme, host, port) for e in entries):
        return parts
    named = [e for e in entries if e.names(host)]
    if not named:
        raise WebhookNotAllowed(
            f"call-webhook to {host!r} refused: the host is not in {SETTING} ({listed})."
        )
    if scheme == "http" and not any(e.scheme == "http" for e in named):
        raise WebhookNotAllowed(
            f"call-webhook to {host!r} refused: plain http sends the request unencrypted. "
            f"Use an https URL, or list 'http://{host}' in {SETTING} to allow it ({listed})."
        )
    entry = f"{'http://' if scheme == 'http' else ''}{host}:{port}"
    raise WebhookNotAllowed(
        f"call-webhook to {host!r} refused: port {port} is not allowed for it; list "
        f"{entry!r} in {SETTING} to allow it ({listed})."
    )


# Addresses


def address_problem(address: str) -> str | None:
    """Why `address` may not receive a webhook: any address that is not public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not ip.is_global:  # e.g. 100.64.0.0/10, shared by carriers' NATs
        return f"{address} is not a public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# The sender


class WebhookSender:
    """The default HttpSender. `resolver`, `connect` and `check` are replaceable (tests)."""

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        connect: Connector = socket.create_connection,
        check: AddressCheck = address_problem,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.resolver = resolver
        self.connect = connect
        self.check = check
        self.tls = tls

    def checked_address(self, host: str, port: int) -> str:
        """The one address the request goes to, once every address of `host` passed."""
        try:
            addresses = list(self.resolver(host, port))
        except OSError as exc:
            raise ActionError(f"call-webhook: {host!r} does not resolve: {exc}") from None
        if not addresses:
            raise ActionError(f"call-webhook: {host!r} has no address.")
        # All of them, not only the one used: a name that also points inside the
        # network is refused whichever address a later resolution would pick.
        for address in addresses:
            problem = self.check(address)
            if problem is not None:
                raise WebhookNotAllowed(
                    f"call-webhook to {host!r} refused: it resolves to {problem}; webhooks "
                    "only go to public addresses."
                )
        return addresses[0]

    def __call__(self, request: WebhookRequest) -> int:
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise WebhookNotAllowed(f"call-webhook to {request.url!r}: only https URLs are called.")
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or DEFAULT_PORTS[scheme]
        address = self.checked_address(host, port)
        connection: http.client.HTTPConnection
        if scheme == "https":
            context = self.tls or ssl.create_default_context()
            connection = http.client.HTTPSConnection(
                host, port, timeout=request.timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=request.timeout)

        # http.client connects to (host, port) through this attribute; TLS (SNI and the
        # certificate check) and the Host header still use the host name.
        def pinned(_: Any, timeout: float, source: Any = None) -> socket.socket:
            return self.connect((address, port), timeout)

        connection._create_connection = pinned  # type: ignore[attr-defined]
        target = f"{request.method} {request.url}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            connection.request(request.method, path, body=request.body, headers=request.headers)
            response = connection.getresponse()
            status, reason = response.status, response.reason
            location = response.getheader("Location")
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise ActionError(f"{target} failed: {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if 300 <= status < 400:
            raise ActionError(
                f"{target} answered HTTP {status} {reason}, a redirect to {location!r}: "
                "redirects are not followed (they could leave the allow-list); call the "
                "final URL instead."
            )
        if status >= 400:
            raise ActionError(f"{target} answered HTTP {status} {reason}")
        return status


default_sender = WebhookSender()
