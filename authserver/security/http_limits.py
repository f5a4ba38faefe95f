"""Limits on the request head (request line + headers) at the HTTP server.

uvicorn's httptools parser has no size limit on the head: a 10 MB header is
read and handed to the app. :class:`LimitedHttpToolsProtocol` counts the bytes
received before the headers are complete and answers ``431 Request Header
Fields Too Large`` (RFC 6585 §5), closing the connection, once they pass
:data:`MAX_HEAD_BYTES` (checked per read: a head may overshoot by one read).
``authserver serve`` selects it. The reverse proxy should refuse earlier
still (README "Reverse proxy").
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Request line plus all header fields, in bytes (nginx's default ceiling is 4 x 8 KiB).
MAX_HEAD_BYTES = 32 * 1024

_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"cache-control: no-store\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_BODY = b'{"error":"invalid_request","error_description":"The request line and headers are too large."}'


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request head larger than :data:`MAX_HEAD_BYTES`."""

    _head_bytes = 0
    _heads = 0  # heads completed on this connection
    _in_head = True  # waiting for (the rest of) a head, not inside a body

    def data_received(self, data: bytes) -> None:
        in_head, heads = self._in_head, self._heads
        super().data_received(data)
        # count only reads that lie inside one head: a read that completes a head may carry
        # body bytes, and bodies are MAX_BODY_BYTES's business
        if in_head and heads == self._heads and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.logger.info("request head over %d bytes refused", MAX_HEAD_BYTES)
                self.transport.write(_RESPONSE % (len(_BODY), _BODY))
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._heads += 1
        self._head_bytes = 0
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
