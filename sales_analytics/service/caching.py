"""Conditional GET for read endpoints: an ETag over the body, ``Cache-Control`` for private caches."""

import hashlib
import json
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder


def cached_response(request: Request, body: bytes, media_type: str, max_age: int) -> Response:
    """The body with its ETag, or 304 when the client already holds it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}", "Vary": "X-API-Key, Cookie"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)


def cached_json(request: Request, payload: Any, max_age: int = 60) -> Response:
    body = json.dumps(jsonable_encoder(payload), separators=(",", ":")).encode()
    return cached_response(request, body, "application/json", max_age)
