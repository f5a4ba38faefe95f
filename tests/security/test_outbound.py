"""Requests to addresses a client registered (``security/outbound.py``): a private,
loopback or link-local destination is refused before any connection, unless
allowed; an allowed one is reached at the address that was checked, naming the host."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

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
from tests.oauth.test_private_key_jwt import JwksServer, Signer


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


def test_over_tls_the_certificate_is_checked_against_the_host_not_the_address(tmp_path, jwks_server):
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
    client_tls = ssl.create_default_context(cafile=str(cert_file))
    with httpx.Client(verify=client_tls, timeout=5) as http:
        response = http.send(destination.request(http, "GET", headers={}))
        assert response.status_code == 200
        assert jwks_server.host == f"{host}:{port}"
        with pytest.raises(httpx.ConnectError, match="certificate"):  # the address alone does not match
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
    assert post(f"http://127.0.0.1:{port}/logout", "a.logout.token", 0.5, allow_private=True) is not None
    conn, _ = listener.accept()  # allowed: the POST reached the port (and timed out unanswered)
    conn.close()


def test_the_setting_and_the_development_default():
    assert Settings(issuer="https://id.example.com").private_destinations_allowed is False
    assert Settings(issuer="https://id.example.com", outbound_allow_private=True).private_destinations_allowed
    assert Settings(issuer="http://127.0.0.1:8000").private_destinations_allowed
    env = {"AUTHSERVER_ISSUER": "https://id.example.com", "AUTHSERVER_OUTBOUND_ALLOW_PRIVATE": "true",
           "AUTHSERVER_SECRET_KEY": "k" * 48}
    assert Settings.from_env(env).private_destinations_allowed
