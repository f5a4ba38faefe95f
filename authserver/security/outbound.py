"""Requests this server sends to addresses a client registered: its ``jwks_uri``
(``private_key_jwt``, RFC 7523) and its ``backchannel_logout_uri`` (OIDC Back-Channel
Logout 1.0 §2.5).

Whoever registers a client chooses those addresses, so without a check the server
would fetch or post wherever it is told: to its own Postgres or Redis port, to a
cloud metadata service (169.254.169.254), to an admin page on the internal network
(server-side request forgery, OWASP SSRF; RFC 7591 §5 asks servers to consider what
the URIs a client registers point to). Unless ``OUTBOUND_ALLOW_PRIVATE`` is set (or
the issuer is plain http, a development server whose clients run on the same
machine), :func:`resolve` refuses a host any of whose addresses is not a public one,
and the request goes to the address that was checked, not to a second DNS answer
(DNS rebinding): the URL names the address, the ``Host`` header and TLS's server name
(SNI, and so the certificate check) name the host.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

NOT_A_URL = "the URI must be an http(s) URL with a host and no credentials"


class ForbiddenDestination(ValueError):
    """The URI's host is not an address this server sends requests to; the message is
    safe to show to the client's administrator (it names no resolved address)."""


@dataclass(frozen=True)
class Destination:
    """A URI whose host was resolved and checked: send to ``pinned``, naming ``host``."""

    uri: str
    host: str
    pinned: str

    def request(self, http: httpx.Client, method: str, *, headers: dict[str, str],
                data: dict[str, str] | None = None) -> httpx.Request:
        parts = urlsplit(self.uri)
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return http.build_request(method, self.pinned, headers={**headers, "Host": parts.netloc}, data=data,
                                  extensions=extensions)


def is_public(address: str) -> bool:
    """A globally routable unicast address: not loopback, private (RFC 1918, RFC 4193),
    link-local (the metadata services), shared (RFC 6598), documentation, multicast,
    reserved or unspecified; an IPv4-mapped IPv6 address is judged as its IPv4 one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(uri: str, *, allow_private: bool) -> Destination:
    """Check ``uri``'s scheme and host; raise :class:`ForbiddenDestination`.

    Every address the host resolves to is checked (the HTTP client could try any of
    them). With ``allow_private`` nothing is refused, so the host is left to the HTTP
    client to resolve as usual."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port  # a port out of range raises here
    except ValueError:
        raise ForbiddenDestination(NOT_A_URL) from None
    if not host or parts.scheme not in ("http", "https") or "@" in parts.netloc:
        raise ForbiddenDestination(NOT_A_URL)
    if allow_private:
        return Destination(uri, host, uri)
    try:
        addresses = list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, None)))
    except (OSError, UnicodeError, ValueError):
        raise ForbiddenDestination("the URI's host does not resolve") from None
    if not all(is_public(a) for a in addresses):
        raise ForbiddenDestination(
            "the URI's host is a private, loopback or link-local address; "
            "set OUTBOUND_ALLOW_PRIVATE to send requests there")
    literal = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
    netloc = f"{literal}:{port}" if port else literal
    return Destination(uri, host, urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
