"""Responses built once and served as they are, with an ``ETag`` and ``304`` (RFC 9110 §8.8.3,
§13.1.2): the discovery document and the JWKS, whose bytes change only with the settings or
the signing keys. The tag is a hash of the body, so every node serving the same keys gives
the same tag and a cache revalidating against another node still gets its ``304``."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response


class Prebuilt:
    """One body, its tag, and the two responses (``200`` and ``304``) made once."""

    def __init__(self, body: bytes, media_type: str, cache_control: str) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"Cache-Control": cache_control, "ETag": self.etag}
        self.full = Response(body, media_type=media_type, headers=headers)
        self.not_modified = Response(status_code=304, headers=headers)

    def answer(self, request: Request) -> Response:
        """``304`` when ``If-None-Match`` names this tag (weak comparison, §13.1.2), else the body."""
        wanted = request.headers.get("if-none-match")
        if wanted and (wanted.strip() == "*" or self.etag in
                       (t.strip().removeprefix("W/") for t in wanted.split(","))):
            return self.not_modified
        return self.full
