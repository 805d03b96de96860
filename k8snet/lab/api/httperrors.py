"""Errors raised by the HTTP layer itself, answered as Kubernetes ``Status`` objects.

aiohttp refuses some requests before any handler runs (a request line or header
longer than its 8 KiB limit, a malformed request) and answers them with a plain-text
page; kubectl and the Python client then print "unknown error" instead of the reason.
:class:`StatusAppRunner` makes those answers ``Status`` JSON with the HTTP code's
reason, like the rest of the API.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..errors import ApiError

# apimachinery's StatusReason for the codes the HTTP layer produces.
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 408: "Timeout", 409: "Conflict", 413: "RequestEntityTooLarge",
            414: "RequestURITooLong", 415: "UnsupportedMediaType", 429: "TooManyRequests",
            431: "RequestHeaderFieldsTooLarge", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def status_error(code: int, message: str) -> ApiError:
    reason = _REASONS.get(code) or (HTTPStatus(code).phrase.replace(" ", "") if code in HTTPStatus._value2member_map_
                                    else "Unknown")
    return ApiError(code, reason, message.strip() or HTTPStatus(code).phrase)


def body_timeout(seconds: float) -> ApiError:
    """504 Timeout, as the real server's request timeout answers a request that did
    not complete (here: a body that did not arrive)."""
    return ApiError(504, "Timeout", "Timeout: request did not complete within requested timeout - "
                    f"the request body did not arrive within {seconds:g}s")


class _StatusRequestHandler(RequestHandler):
    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, checks nothing was sent yet
        if status == 500:
            text = "Internal error occurred: " + (str(exc) if exc is not None else "unexpected error")
        else:
            text = message or str(exc or "")
        body = status_error(status, text).status()
        resp = web.Response(status=plain.status, body=json.dumps(body, separators=(",", ":")).encode(),
                            content_type="application/json")
        resp.force_close()
        return resp


class _StatusServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _StatusRequestHandler(self, loop=self._loop, **self._kwargs)


class StatusAppRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol-level errors with Status JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app's own Server, with only the connection factory changed (no new state).
        server.__class__ = _StatusServer
        return server
