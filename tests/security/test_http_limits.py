"""The server refuses an over-large request head with 431 (issue 10): a real uvicorn
with :class:`LimitedHttpToolsProtocol` (what ``authserver serve`` runs), over a socket."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from authserver.security.http_limits import MAX_HEAD_BYTES, LimitedHttpToolsProtocol


async def _ok(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    config = uvicorn.Config(_ok, host="127.0.0.1", port=0, http=LimitedHttpToolsProtocol, lifespan="off",
                            log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _head(size: int) -> bytes:
    start = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
    return start + b"a" * max(0, size - len(start) - 4) + b"\r\n\r\n"


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"ok" in chunks[-1]:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def test_head_under_the_limit_is_served(port):
    assert _exchange(port, _head(MAX_HEAD_BYTES // 2)).startswith(b"HTTP/1.1 200")


def test_head_over_the_limit_is_431(port):
    answer = _exchange(port, _head(MAX_HEAD_BYTES + 8 * 1024)[:-4])  # unfinished: the server stops reading
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b"invalid_request" in answer


def test_ten_megabyte_header_is_cut_off(port):
    answer = _exchange(port, _head(10 * 1024 * 1024))
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]  # reset, or the 431 before it
    assert not answer.startswith(b"HTTP/1.1 200")


def test_a_large_body_is_not_counted_as_head(port):
    body = b"a=" + b"x" * (MAX_HEAD_BYTES + 16 * 1024)
    request = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    answer = _exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]


def test_a_body_in_many_reads_is_not_counted_as_head(port):
    body = b"a=" + b"x" * (MAX_HEAD_BYTES * 2)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 8192):
            sock.sendall(body[i:i + 8192])
            time.sleep(0.01)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]


def test_keep_alive_counts_each_request_head_alone(port):
    one = _head(MAX_HEAD_BYTES * 3 // 4)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(one)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
