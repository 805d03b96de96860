"""agnhost's HTTP servers: one write per response, HTTP/1.1 keep-alive (loopback only)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Iterator

from k8snet.lab.images import agnhost


class CountingServer(ThreadingHTTPServer):
    """Counts accepted connections, so a test sees whether a client had to reconnect."""

    daemon_threads = True

    def __init__(self, handler: type) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        self.connections += 1
        super().process_request(request, client_address)


def recording(base: type) -> type:
    """``base`` with every write to the socket and the TCP_NODELAY setting recorded."""

    class Recording(base):  # type: ignore[misc, valid-type]
        writes: list[bytes] = []
        nodelay: list[int] = []

        def setup(self) -> None:
            super().setup()
            real = self.wfile
            Recording.nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

            class Writer:
                closed = False

                def write(self, data: bytes) -> int:
                    Recording.writes.append(bytes(data))
                    return real.write(data)

                def flush(self) -> None:
                    real.flush()

            self.wfile = Writer()

    return Recording


@contextmanager
def serving(handler: type) -> Iterator[CountingServer]:
    server = CountingServer(handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def get(conn: http.client.HTTPConnection, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp, resp.read()


def test_netexec_sends_each_response_in_one_write_without_nagle():
    handler = recording(agnhost.NetexecHandler)
    with serving(handler) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        started = time.monotonic()
        for _ in range(10):
            resp, body = get(conn, "/hostname")
            assert resp.status == 200 and body == agnhost.HOSTNAME.encode()
        elapsed = time.monotonic() - started
        conn.close()
    responses = [w for w in handler.writes if w.startswith(b"HTTP/1.1 200")]
    assert len(responses) == 10
    assert all(w.endswith(b"\r\n\r\n" + agnhost.HOSTNAME.encode()) for w in responses)  # headers + body together
    assert handler.nodelay and all(handler.nodelay)
    assert server.connections == 1
    # A delayed ACK between headers and body would cost ~40 ms per kept-alive request.
    assert elapsed < 0.3, f"10 keep-alive requests took {elapsed:.3f} s"


def test_serve_hostname_keeps_the_connection_alive():
    with serving(agnhost.HostnameHandler) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        for _ in range(3):
            resp, body = get(conn, "/")
            assert resp.version == 11 and resp.status == 200
            assert body == agnhost.HOSTNAME.encode()
            assert resp.getheader("Connection") is None
        conn.close()
    assert server.connections == 1


def test_serve_hostname_close_ends_each_connection():
    class Closing(agnhost.HostnameHandler):
        close = True

    with serving(Closing) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        for _ in range(2):
            resp, body = get(conn, "/")  # http.client reconnects after "Connection: close"
            assert resp.getheader("Connection") == "close" and body == agnhost.HOSTNAME.encode()
        conn.close()
    assert server.connections == 2
