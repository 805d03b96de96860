"""CoreDNS-style probe endpoints: ``GET /health`` (the process serves) and ``GET /ready``
(the first full list of Services and EndpointSlices is in), for the pod's liveness
and readiness probes.

CoreDNS serves these on two ports (8080 and 8181); the lab serves both paths on one
port. It is a few lines of asyncio rather than a web framework because the probe is
a single GET and the DNS image should start fast with the standard library alone.
"""

from __future__ import annotations

import asyncio
from typing import Callable

READ_TIMEOUT = 5.0


class HealthServer:
    def __init__(self, ready: Callable[[], bool], host: str = "0.0.0.0", port: int = 8080):
        self.ready = ready
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _status(self, method: str, path: str) -> tuple[int, str, str]:
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "Method Not Allowed", "method not allowed\n"
        if path == "/health":
            return 200, "OK", "OK"
        if path == "/ready":
            return (200, "OK", "OK") if self.ready() else (503, "Service Unavailable", "not ready: API not synced\n")
        return 404, "Not Found", "404 page not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            parts = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            code, reason, body = self._status(method, path)
            head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (body.encode() if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
