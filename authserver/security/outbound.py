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

Both requests go through the egress proxy the environment names (:func:`proxy_for`).
The site's certificate is checked against the environment's CA bundle
(``SSL_CERT_FILE``, ``SSL_CERT_DIR``; else certifi's, as httpx); an ``https://``
proxy's own, by httpcore's default context (OpenSSL's default paths and certifi's).
Through a proxy the tunnel (``CONNECT``, RFC 9110 §9.3.6) is asked for the checked
address, so the proxy does not resolve the name again, and TLS inside it still names
the host: :class:`_HostTLS`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpx

NOT_A_URL = "the URI must be an http(s) URL with a host and no credentials"
ONLY_IPV6 = "the URI's host has only IPv6 addresses, which the proxy cannot be asked for"


class ForbiddenDestination(ValueError):
    """The URI's host is not an address this server sends requests to; the message is
    safe to show to the client's administrator (it names no resolved address)."""


@dataclass(frozen=True)
class Destination:
    """A URI whose host was resolved and checked: send to ``pinned``, naming ``host``."""

    uri: str
    host: str
    pinned: str
    proxy: str | None = None  # the egress proxy to go through (:func:`proxy_for`)

    def client(self, timeout: float) -> httpx.Client:
        """An HTTP client for this destination: no redirects followed (a redirect could
        lead anywhere), through :attr:`proxy`, TLS naming the host (without the trailing
        dot a fully qualified name may have: RFC 6066 §3). Nothing else is taken from
        the environment (``trust_env``): the proxy was chosen for the host's name."""
        return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, proxy=self.proxy,
                            verify=_HostTLS.naming(self.host.removesuffix(".")))

    def request(self, http: httpx.Client, method: str, *, headers: dict[str, str],
                data: dict[str, str] | None = None) -> httpx.Request:
        """The request to the pinned address, naming the host in ``Host``."""
        return http.build_request(method, self.pinned, headers={**headers, "Host": urlsplit(self.uri).netloc},
                                  data=data)


#: what ``ssl.create_default_context`` sets (Python 3.13 adds strict X.509 checks)
_DEFAULT_VERIFY_FLAGS = ssl.create_default_context().verify_flags


class _HostTLS(ssl.SSLContext):
    """A client TLS context whose every handshake names one host (SNI and the certificate
    check), whatever the connection's address. The pinned URL names the address, which
    httpcore passes as the server name; its ``sni_hostname`` request extension would
    change that on a direct connection, but not inside a proxy's tunnel."""

    host = ""

    @classmethod
    def naming(cls, host: str) -> _HostTLS:
        """Verifying as httpx's default context does: ``SSL_CERT_FILE``, else
        ``SSL_CERT_DIR``, else certifi's bundle; with this Python's default verify flags."""
        context = cls(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
        context.verify_flags = _DEFAULT_VERIFY_FLAGS
        if os.environ.get("SSL_CERT_FILE"):
            context.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
        elif os.environ.get("SSL_CERT_DIR"):
            context.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
        else:
            context.load_verify_locations(cafile=certifi.where())
        context.host = host
        return context

    # the server name comes by keyword, as httpcore and asyncio pass it (given by
    # position as well, it would be a TypeError, never a silent second name)
    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        return super().wrap_socket(*args, **{**kwargs, "server_hostname": self.host})

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        """TLS inside TLS: the tunnel through an ``https://`` proxy."""
        return super().wrap_bio(*args, **{**kwargs, "server_hostname": self.host})


def proxy_for(scheme: str, host: str) -> str | None:
    """The egress proxy for a request to ``host`` over ``scheme``, from the environment
    as Python's ``urllib`` and requests read it: ``https_proxy`` or ``http_proxy`` (the
    lowercase name first), else ``all_proxy``, and none for a host ``no_proxy`` lists
    (matched against the name, since the request itself names the checked address) or
    a loopback host (:func:`_is_loopback`), which an egress proxy would take for its
    own. A value without a scheme is an http proxy, as for requests.

    Raises :class:`ForbiddenDestination` when the proxy is not a usable ``http://`` or
    ``https://`` URL (a SOCKS proxy is not supported): no request then, rather than one
    around the proxy."""
    name = host.removesuffix(".")  # a fully qualified name is the same host
    if _is_loopback(name):
        return None
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    # urllib's no_proxy matching (what requests uses too; not in typeshed's stubs)
    if not url or urllib.request.proxy_bypass_environment(name, proxies):  # type: ignore[attr-defined]
        return None
    url = url if "://" in url else f"http://{url}"
    # as httpx will read it: ValueError for an unknown scheme, InvalidURL for a port that
    # is no number or a control character
    with contextlib.suppress(ValueError, httpx.InvalidURL):
        parsed = httpx.Proxy(url).url
        if parsed.scheme in ("http", "https") and parsed.host:
            return url
    raise ForbiddenDestination("the server's proxy setting is not an http:// or https:// URL")


def _is_loopback(name: str) -> bool:
    """``localhost`` (and its subdomains, RFC 6761 §6.3), or an address of this machine
    as the resolver reads it: a loopback or unspecified one, also in a short IPv4 form
    (``127.1``, ``0x7f000001``) or mapped into IPv6."""
    lowered = name.lower()
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return True
    try:
        ip = _unmapped(ipaddress.ip_address(name))
    except ValueError:
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return False
    return ip.is_loopback or ip.is_unspecified


def _unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as its IPv4 address: judged as that."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(address: str) -> bool:
    """A globally routable unicast address: not loopback, private (RFC 1918, RFC 4193),
    link-local (the metadata services), shared (RFC 6598), documentation, multicast,
    reserved or unspecified; an IPv4-mapped IPv6 address is judged as its IPv4 one."""
    ip = _unmapped(ipaddress.ip_address(address))
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
    proxy = proxy_for(parts.scheme, host)
    if allow_private:
        if proxy is not None and ":" in host:  # an IPv6 literal: see the tunnel target below
            raise ForbiddenDestination(ONLY_IPV6)
        return Destination(uri, host, uri, proxy)
    try:
        addresses = list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, None)))
    except (OSError, UnicodeError, ValueError):
        raise ForbiddenDestination("the URI's host does not resolve") from None
    if not all(is_public(a) for a in addresses):
        raise ForbiddenDestination(
            "the URI's host is a private, loopback or link-local address; "
            "set OUTBOUND_ALLOW_PRIVATE to send requests there")
    chosen = addresses[0]
    if proxy is not None and ":" in chosen:
        # httpcore writes an IPv6 tunnel target without brackets (CONNECT 2001:db8::1:443),
        # which no proxy can read: an IPv4 answer is taken when there is one
        ipv4 = [a for a in addresses if ":" not in a]
        if not ipv4:
            raise ForbiddenDestination(ONLY_IPV6)
        chosen = ipv4[0]
    literal = f"[{chosen}]" if ":" in chosen else chosen
    netloc = f"{literal}:{port}" if port else literal
    return Destination(uri, host, urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), proxy)
