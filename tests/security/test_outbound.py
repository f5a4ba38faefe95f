"""Requests to addresses a client registered (``security/outbound.py``): a private,
loopback or link-local destination is refused before any connection, unless
allowed; an allowed one is reached at the address that was checked, naming the host."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest
from authlib.oauth2.rfc6749.errors import InvalidClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authserver.backchannel.service import post
from authserver.clients.models import Client
from authserver.oauth.client_auth import ClientKeys
from authserver.security import outbound
from authserver.settings import Settings
from tests.oauth.test_private_key_jwt import JwksServer, Signer, jwks

# the server reaches sites on this machine: no proxy of the environment in between
pytestmark = pytest.mark.usefixtures("no_ambient_proxy")


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True),
    ("2001:4860:4860::8888", True),
    ("127.0.0.1", False),
    ("::1", False),
    ("10.1.2.3", False),
    ("172.16.0.1", False),
    ("192.168.1.1", False),
    ("169.254.169.254", False),  # cloud metadata
    ("100.64.0.1", False),  # RFC 6598 shared address space
    ("0.0.0.0", False),
    ("fd00::1", False),  # RFC 4193
    ("fe80::1%1", False),  # link-local with a zone
    ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
    ("::ffff:8.8.8.8", True),
    ("224.0.0.1", False),
    ("192.0.2.1", False),  # documentation
])
def test_which_addresses_are_public(address, public):
    assert outbound.is_public(address) is public


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:9/jwks",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/jwks",
    "https://10.0.0.5/logout",
    "https://localhost/jwks",  # a name, resolved to loopback
    "https://0x7f000001/jwks",  # loopback spelt as one number
])
def test_private_destinations_are_refused(uri):
    with pytest.raises(outbound.ForbiddenDestination) as refused:
        outbound.resolve(uri, allow_private=False)
    assert str(refused.value) == ("the URI's host is a private, loopback or link-local address; "
                                  "set OUTBOUND_ALLOW_PRIVATE to send requests there")


@pytest.mark.parametrize("uri", ["ftp://8.8.8.8/jwks", "https:///jwks", "file:///etc/passwd",
                                 "https://user:secret@8.8.8.8/jwks", "https://8.8.8.8:99999/jwks",
                                 "https://[::1/jwks"])
@pytest.mark.parametrize("allow_private", [True, False])
def test_only_http_urls_with_a_host_and_no_credentials(uri, allow_private):
    with pytest.raises(outbound.ForbiddenDestination) as refused:
        outbound.resolve(uri, allow_private=allow_private)
    assert str(refused.value) == "the URI must be an http(s) URL with a host and no credentials"


def test_a_host_that_does_not_resolve_is_refused():
    with pytest.raises(outbound.ForbiddenDestination) as refused:
        outbound.resolve("https://jwks.does-not-exist.invalid/keys", allow_private=False)
    assert str(refused.value) == "the URI's host does not resolve"


@pytest.mark.parametrize(("uri", "pinned", "host"), [
    ("https://8.8.8.8:8443/keys?v=1", "https://8.8.8.8:8443/keys?v=1", "8.8.8.8"),
    ("https://8.8.8.8/keys", "https://8.8.8.8/keys", "8.8.8.8"),
    ("http://[2001:4860:4860::8888]:8080/logout", "http://[2001:4860:4860::8888]:8080/logout",
     "2001:4860:4860::8888"),
])
def test_a_public_address_is_pinned_and_the_host_named(uri, pinned, host):
    destination = outbound.resolve(uri, allow_private=False)
    assert destination == outbound.Destination(uri=uri, host=host, pinned=pinned)


def test_allowed_private_destinations_are_not_resolved_here():
    uri = "http://rp.internal.example/logout"
    assert outbound.resolve(uri, allow_private=True) == outbound.Destination(uri, "rp.internal.example", uri)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def test_a_private_jwks_uri_is_never_fetched(jwks_server):
    signer = Signer()
    jwks_server.publish(signer)
    keys = ClientKeys(allow_http=True, allow_private=False)
    with pytest.raises(InvalidClientError) as caught:
        keys.keys(Client(jwks_uri=jwks_server.url), kid=None)
    assert "private, loopback or link-local" in str(caught.value.description)
    assert jwks_server.fetches == 0
    allowed = ClientKeys(allow_http=True, allow_private=True)
    assert allowed.keys(Client(jwks_uri=jwks_server.url), kid=None)[0]["kid"] == signer.kid
    assert jwks_server.fetches == 1


@pytest.mark.parametrize("allow_private", [True, False])
def test_a_jwks_uri_with_a_port_out_of_range_is_invalid_client_not_an_error(allow_private):
    """Registration checks the host, not the port: the fetch must refuse it cleanly."""
    keys = ClientKeys(allow_http=False, allow_private=allow_private)
    with pytest.raises(InvalidClientError) as caught:
        keys.keys(Client(jwks_uri="https://jwks.example.com:99999/keys"), kid=None)
    assert "with a host and no credentials" in str(caught.value.description)


def test_the_request_goes_to_the_checked_address_and_names_the_host(jwks_server):
    """What a rebinding DNS answer would change is the address: the request goes to the
    one in ``pinned`` whatever the host's name resolves to now."""
    signer = Signer()
    jwks_server.publish(signer)
    port = jwks_server.url.split(":")[2].split("/")[0]
    destination = outbound.Destination(uri=f"http://jwks.rebound.invalid:{port}/jwks.json",
                                       host="jwks.rebound.invalid", pinned=jwks_server.url)
    body = ClientKeys(allow_http=True, allow_private=False)._get(destination)
    assert signer.kid in body.decode()
    assert jwks_server.host == f"jwks.rebound.invalid:{port}"


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (its own CA): key and certificate files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def test_over_tls_the_certificate_is_checked_against_the_host_not_the_address(tmp_path, jwks_server,
                                                                            monkeypatch):
    """The pinned URL names 127.0.0.1, the certificate only the host: the handshake
    succeeds because TLS names the host (SNI and the hostname check)."""
    host = "jwks.rebound.invalid"
    key_file, cert_file = _certificate(tmp_path, host)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    jwks_server.httpd.socket = server_tls.wrap_socket(jwks_server.httpd.socket, server_side=True)
    port = jwks_server.httpd.server_address[1]
    destination = outbound.Destination(uri=f"https://{host}:{port}/jwks.json", host=host,
                                       pinned=f"https://127.0.0.1:{port}/jwks.json")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with destination.client(5) as http:
        response = http.send(destination.request(http, "GET", headers={}))
        assert response.status_code == 200
        assert jwks_server.host == f"{host}:{port}"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert_file)), timeout=5) as http, \
            pytest.raises(httpx.ConnectError, match="certificate"):  # the address alone does not match
        http.get(destination.pinned)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def test_a_logout_token_is_not_posted_to_a_private_address(listener):
    port = listener.getsockname()[1]
    error = post(f"http://127.0.0.1:{port}/logout", "a.logout.token", 2, allow_private=False)
    assert error is not None and error.startswith("not sent:") and len(error) <= 200
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
    started = time.monotonic()
    assert post(f"http://127.0.0.1:{port}/logout", "a.logout.token", 0.5, allow_private=True) == "ReadTimeout"
    assert time.monotonic() - started < 4  # the timeout given, not httpx's default of 5 s
    conn, _ = listener.accept()  # allowed: the POST reached the port (and timed out unanswered)
    conn.close()


def test_the_setting_and_the_development_default():
    assert Settings(issuer="https://id.example.com").private_destinations_allowed is False
    assert Settings(issuer="https://id.example.com", outbound_allow_private=True).private_destinations_allowed
    assert Settings(issuer="http://127.0.0.1:8000").private_destinations_allowed
    env = {"AUTHSERVER_ISSUER": "https://id.example.com", "AUTHSERVER_OUTBOUND_ALLOW_PRIVATE": "true",
           "AUTHSERVER_SECRET_KEY": "k" * 48}
    assert Settings.from_env(env).private_destinations_allowed


# -- through a forward proxy (HTTPS_PROXY) -----------------------------------------------


class TlsSite:
    """An https site on a loopback port whose certificate names ``host`` only (not the
    address), recording the TLS server name (SNI) of each handshake and each request's
    method, ``Host`` and body; a GET answers ``body``."""

    def __init__(self, tmp_path: Path, host: str, body: bytes = b"") -> None:
        key_file, self.ca = _certificate(tmp_path, host)
        self.server_names: list[str | None] = []
        self.requests: list[tuple[str, str | None, bytes]] = []
        self.location: str | None = None  # when set, every answer is a 307 redirect there
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.ca, key_file)
        tls.sni_callback = lambda _sock, name, _context: self.server_names.append(name)  # type: ignore[assignment]
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self) -> None:
                # the handshake here, in the request's thread and with a time limit, not in
                # accept() on the server's thread, where a silent peer would stop it
                self.request.settimeout(5)
                self.request.do_handshake()
                super().setup()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.requests.append(("POST", self.headers.get("Host"), self.rfile.read(length)))
                self._answer(b"")

            def do_GET(self) -> None:
                outer.requests.append(("GET", self.headers.get("Host"), b""))
                self._answer(body)

            def _answer(self, content: bytes) -> None:
                self.send_response(200 if outer.location is None else 307)
                if outer.location is not None:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TunnelProxy:
    """A forward proxy that opens tunnels (``CONNECT``, RFC 9110 §9.3.6): it records the
    target each client asks for and tunnels every one to the loopback port ``upstream``,
    as if that target's address were the site's. Any other method gets 501."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.targets: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a client that gives up mid-tunnel
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b"\r\n", 1)[0].decode().split(" ")[:2]
            self.targets.append(f"{method} {target}")
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection(("127.0.0.1", self.upstream)) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                while True:
                    ready, _, _ = select.select([conn, upstream], [], [], 10)
                    if not ready:
                        return
                    for side in ready:
                        data = side.recv(65536)
                        if not data:
                            return
                        (upstream if side is conn else conn).sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        self.sock.close()


#: the address the test's DNS gives the relying party's host: a public one, so it is
#: pinned (the proxy tunnels it to the loopback site)
PUBLIC = "93.184.215.14"
RP_HOST = "rp.rebound.invalid"


@pytest.fixture
def behind_a_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   no_ambient_proxy: None) -> Iterator[tuple[TlsSite, TunnelProxy]]:
    """The relying party's https site, reached only through a forward proxy named by
    ``HTTPS_PROXY``; the host (with or without the trailing dot of a fully qualified
    name) resolves to :data:`PUBLIC`, and the site's own CA is the trusted one
    (``SSL_CERT_FILE``)."""
    signer = Signer()
    site = TlsSite(tmp_path, RP_HOST, body=json.dumps(jwks(signer)).encode())
    site.signer = signer  # type: ignore[attr-defined]
    proxy = TunnelProxy(site.port)
    resolve = socket.getaddrinfo

    def dns(host: object, *args: object, **kwargs: object) -> object:
        if host in (RP_HOST, f"{RP_HOST}."):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 0))]
        return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(site.ca))
    yield site, proxy
    proxy.close()
    site.close()


def test_a_logout_token_goes_through_the_proxy_to_the_checked_address_naming_the_host(behind_a_proxy):
    """The proxy is asked for a tunnel to the address that was checked, not to the name
    (which it would resolve again), and TLS inside the tunnel names the host, so the
    certificate is checked against the host (OIDC Back-Channel Logout 1.0 §2.5 over TLS)."""
    site, proxy = behind_a_proxy
    assert post(f"https://{RP_HOST}/logout", "a.logout.token", 5, allow_private=False) is None
    assert proxy.targets == [f"CONNECT {PUBLIC}:443"]
    assert site.server_names == [RP_HOST]
    assert site.requests == [("POST", RP_HOST, b"logout_token=a.logout.token")]


def test_a_jwks_uri_is_fetched_through_the_proxy_the_same_way(behind_a_proxy):
    site, proxy = behind_a_proxy
    keys = ClientKeys(allow_http=False, allow_private=False)
    assert keys.keys(Client(jwks_uri=f"https://{RP_HOST}/jwks.json"), kid=None)[0]["kid"] == site.signer.kid
    assert proxy.targets == [f"CONNECT {PUBLIC}:443"]
    assert site.server_names == [RP_HOST]
    assert site.requests == [("GET", RP_HOST, b"")]


def test_a_redirect_is_not_followed(behind_a_proxy, listener):
    """A checked site could otherwise send the request on to an address that was never
    checked (here a loopback port): the answer is the redirect itself, a failure."""
    site, proxy = behind_a_proxy
    site.location = f"http://127.0.0.1:{listener.getsockname()[1]}/internal"
    assert post(f"https://{RP_HOST}/logout", "a.logout.token", 5, allow_private=False) == "HTTP 307"
    keys = ClientKeys(allow_http=False, allow_private=False)
    with pytest.raises(InvalidClientError):
        keys.keys(Client(jwks_uri=f"https://{RP_HOST}/jwks.json"), kid=None)
    assert [method for method, _host, _body in site.requests] == ["POST", "GET"]
    assert proxy.targets == [f"CONNECT {PUBLIC}:443"] * 2  # a followed redirect would ask a third time
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing went on to the redirect's address


def test_a_private_address_is_refused_before_the_proxy_is_asked(behind_a_proxy, monkeypatch):
    """The check is ours, whatever the proxy could reach: nothing is sent to it."""
    site, proxy = behind_a_proxy
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *_a, **_k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 0))])
    error = post(f"https://{RP_HOST}/logout", "a.logout.token", 5, allow_private=False)
    assert error is not None and error.startswith("not sent:")
    with pytest.raises(InvalidClientError, match="private, loopback or link-local"):
        ClientKeys(allow_http=False, allow_private=False).keys(Client(jwks_uri=f"https://{RP_HOST}/k"), kid=None)
    assert proxy.targets == [] and site.requests == []


def test_with_private_destinations_allowed_the_proxy_is_asked_for_the_name(behind_a_proxy):
    """Nothing is resolved here then (``OUTBOUND_ALLOW_PRIVATE``, or a development
    issuer): the request still goes through the proxy, which resolves the name."""
    site, proxy = behind_a_proxy
    assert post(f"https://{RP_HOST}/logout", "a.logout.token", 5, allow_private=True) is None
    assert proxy.targets == [f"CONNECT {RP_HOST}:443"]
    assert site.server_names == [RP_HOST]


def test_a_loopback_destination_never_goes_through_the_proxy(tmp_path, monkeypatch, no_ambient_proxy):
    """An egress proxy would reach its own loopback: ``localhost`` is always reached
    directly, whatever the environment names (httpx's own reading of it included)."""
    site = TlsSite(tmp_path, "localhost")
    proxy = TunnelProxy(site.port)
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(site.ca))
        assert post(f"https://localhost:{site.port}/logout", "a.logout.token", 5, allow_private=True) is None
        assert proxy.targets == []
        assert site.requests == [("POST", f"localhost:{site.port}", b"logout_token=a.logout.token")]
    finally:
        proxy.close()
        site.close()


def test_a_fully_qualified_name_with_its_dot_is_named_without_it(behind_a_proxy):
    """RFC 6066 §3: the TLS server name has no trailing dot (the certificate names the
    host without it); ``Host`` keeps the name as the URI wrote it."""
    site, proxy = behind_a_proxy
    assert post(f"https://{RP_HOST}./logout", "a.logout.token", 5, allow_private=False) is None
    assert proxy.targets == [f"CONNECT {PUBLIC}:443"]
    assert site.server_names == [RP_HOST]
    assert site.requests == [("POST", f"{RP_HOST}.", b"logout_token=a.logout.token")]


def test_which_proxy_a_request_takes(monkeypatch, no_ambient_proxy):
    """As curl and urllib read the environment: the scheme's proxy, else ``all_proxy``;
    ``no_proxy`` matched against the name; never for a loopback host."""
    assert outbound.proxy_for("https", RP_HOST) is None
    monkeypatch.setenv("ALL_PROXY", "http://all.proxy:3128")
    assert outbound.proxy_for("https", RP_HOST) == "http://all.proxy:3128"
    monkeypatch.setenv("https_proxy", "proxy.example:8080")  # no scheme: an http proxy
    monkeypatch.setenv("HTTP_PROXY", "https://plain.proxy:8443")
    assert outbound.proxy_for("https", RP_HOST) == "http://proxy.example:8080"
    assert outbound.proxy_for("http", RP_HOST) == "https://plain.proxy:8443"
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.proxy:1")  # the lowercase name wins
    assert outbound.proxy_for("https", RP_HOST) == "http://proxy.example:8080"
    for host in ("localhost", "localhost.", "App.Localhost", "127.0.0.1", "127.1", "0x7f000001", "::1",
                 "::ffff:127.0.0.1", "0.0.0.0", "::"):
        assert outbound.proxy_for("https", host) is None, host
    for host in ("10.0.0.7", "localhost.example", "8.8.8.8"):
        assert outbound.proxy_for("https", host) == "http://proxy.example:8080", host
    for listed in (RP_HOST, ".invalid", "invalid", "other.example, rebound.invalid", "*"):
        monkeypatch.setenv("NO_PROXY", listed)
        assert outbound.proxy_for("https", RP_HOST) is None, listed
        assert outbound.proxy_for("https", f"{RP_HOST}.") is None, listed  # the same host
    monkeypatch.setenv("NO_PROXY", "other.example,10.0.0.0/8")
    assert outbound.proxy_for("https", RP_HOST) == "http://proxy.example:8080"


def test_a_proxy_that_cannot_be_used_stops_the_request_with_a_reason(monkeypatch, no_ambient_proxy):
    """A SOCKS or malformed proxy setting: no request (not one around the proxy), a
    failed delivery or ``invalid_client`` saying why, never an error of the server."""
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *_a, **_k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 0))])
    for setting in ("socks5://127.0.0.1:1080", "ftp://proxy:21", "http://", "http://[::1", "http://proxy:abc",
                    "proxy:3128x",
                    "http://pro\txy:3128"):
        monkeypatch.setenv("HTTPS_PROXY", setting)
        error = post(f"https://{RP_HOST}/logout", "a.logout.token", 1, allow_private=False)
        assert error == "not sent: the server's proxy setting is not an http:// or https:// URL", setting
        with pytest.raises(InvalidClientError, match="proxy setting"):
            ClientKeys(allow_http=False, allow_private=True).keys(Client(jwks_uri=f"https://{RP_HOST}/k"), kid=None)


def test_through_a_proxy_an_ipv4_address_is_pinned_when_there_is_one(monkeypatch, no_ambient_proxy):
    """httpcore writes an IPv6 tunnel target without brackets: through a proxy an IPv4
    answer is pinned, and a host with only IPv6 answers is refused saying why."""
    answers = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 0, 0, 0)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_a, **_k: answers)
    uri = f"https://{RP_HOST}/logout"
    assert outbound.resolve(uri, allow_private=False).pinned == "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/logout"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert outbound.resolve(uri, allow_private=False).pinned == f"https://{PUBLIC}/logout"
    del answers[1]
    with pytest.raises(outbound.ForbiddenDestination, match=r"^the URI.s host has only IPv6 addresses, which"):
        outbound.resolve(uri, allow_private=False)
    literal = "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/logout"  # allowed, so not resolved: the same
    with pytest.raises(outbound.ForbiddenDestination, match=r"^the URI.s host has only IPv6 addresses, which"):
        outbound.resolve(literal, allow_private=True)
    monkeypatch.delenv("HTTPS_PROXY")
    assert outbound.resolve(literal, allow_private=True).pinned == literal


def test_tls_names_the_host_whatever_address_it_is_handed():
    """httpcore hands the pinned address over as the server name (inside a proxy's
    tunnel it ignores ``sni_hostname``): the context names the host instead, on a socket
    and for TLS inside TLS (the tunnel through an https proxy)."""
    context = outbound._HostTLS.naming(RP_HOST)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    with socket.socket() as raw, context.wrap_socket(raw, server_hostname=PUBLIC,
                                                     do_handshake_on_connect=False) as wrapped:
        assert wrapped.server_hostname == RP_HOST
    inner = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=PUBLIC)
    assert inner.server_hostname == RP_HOST and not inner.server_side


def test_the_trusted_authorities_are_the_environments_else_certifis(tmp_path, monkeypatch):
    """As httpx's default: ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's bundle."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    bundled = ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    assert outbound._HostTLS.naming(RP_HOST).get_ca_certs() == bundled
    site = TlsSite(tmp_path, RP_HOST, body=b"{}")
    try:
        destination = outbound.Destination(uri=f"https://{RP_HOST}:{site.port}/x", host=RP_HOST,
                                           pinned=f"https://127.0.0.1:{site.port}/x")
        with destination.client(5) as http, pytest.raises(httpx.ConnectError, match="certificate"):
            http.send(destination.request(http, "GET", headers={}))  # the site's CA is not certifi's
        directory = tmp_path / "authorities"
        directory.mkdir()
        subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(site.ca)],
                                      capture_output=True, text=True, check=True).stdout.strip()
        (directory / f"{subject_hash}.0").write_bytes(site.ca.read_bytes())
        monkeypatch.setenv("SSL_CERT_DIR", str(directory))
        with destination.client(5) as http:
            assert http.send(destination.request(http, "GET", headers={})).status_code == 200
        monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # the file wins over the directory
        with destination.client(5) as http, pytest.raises(httpx.ConnectError, match="certificate"):
            http.send(destination.request(http, "GET", headers={}))
        assert site.server_names == [RP_HOST] * 3
    finally:
        site.close()
