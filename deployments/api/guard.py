"""What the operations API checks before any route reads a body (an ASGI middleware):

- the bearer token of an ``/api/`` request, so a caller without it never gets a body parsed
  (401 at once, whatever it sent);
- the body's size: larger than ``brandJobs.maxBodyBytes`` is a 413, from ``Content-Length``
  when given, else while it arrives (nothing beyond the limit is read).

Malformed JSON from a caller with the token is a 422 that names where, nothing more
(``malformed_json_handler``)."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import get_settings

UNAUTHORIZED = {"detail": "a valid bearer token is required"}


def _answer(status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> list[Message]:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *(extra or [])]
    return [{"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": data}]


def _authorized(scope: Scope) -> bool:
    expected = get_settings().brand_jobs.admin_token.get_secret_value()
    given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
    scheme, _, token = given.partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


class BodyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if not _authorized(scope):
            for message in _answer(401, UNAUTHORIZED, [(b"www-authenticate", b"Bearer")]):
                await send(message)
            return
        limit = get_settings().brand_jobs.max_body_bytes
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, limit)
            return
        chunks, size, more = [], 0, True
        while more:  # the body, up to the limit (a request without Content-Length included)
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        for message in _answer(413, {"detail": f"body: larger than {limit} bytes (brandJobs.maxBodyBytes)"}):
            await send(message)


async def malformed_json_handler(request: Request, exc: Exception) -> JSONResponse:
    """A body that is not JSON: 422 naming the position (no parser internals, no echo of the
    input); every other validation error keeps FastAPI's answer."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is None:
        from fastapi.exception_handlers import request_validation_exception_handler

        return await request_validation_exception_handler(request, exc)
    position = bad_json.get("loc", ("body", 0))[-1]
    return JSONResponse({"detail": f"body: malformed JSON at character {position}"}, status_code=422)
