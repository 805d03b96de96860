"""The probe's ``lb`` mode against loopback servers: the request bytes are those
http.client sends, responses are read as http.client reads them (Content-Length,
chunked, until close, keep-alive, its exceptions), and the rows come back through
the compact table lines exactly as the helper's DataFrame expects them."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from k8snet.measure import parse_lines
from k8snet.probe import probe


class Canned(socketserver.ThreadingTCPServer):
    """Answers every connection with ``reply`` after reading one request head; records
    the request bytes and counts connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        super().__init__(("127.0.0.1", 0), CannedHandler)


class CannedHandler(socketserver.BaseRequestHandler):
    server: Canned

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        self.server.requests.append(head)
        self.request.sendall(self.server.reply)


@contextlib.contextmanager
def served(server: socketserver.BaseServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)  # shuts down at once
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_lb(monkeypatch: pytest.MonkeyPatch, port: int, count: int, keepalive: bool = False,
           path: str = "/") -> list[dict[str, object]]:
    out = io.StringIO()
    monkeypatch.setattr(probe.sys, "stdout", out)
    probe.lb("127.0.0.1", port, path, count, keepalive, timeout=5.0)
    rows, _ = parse_lines(out.getvalue())
    return rows


def test_request_bytes_are_http_clients():
    for host, port, keepalive in (("10.96.0.7", 80, False), ("10.96.0.7", 8080, True), ("web.demo", 80, True),
                                  ("fd00::7", 9376, False)):
        conn = http.client.HTTPConnection(host, port)
        sent: list[bytes] = []
        conn.sock = type("Sock", (), {"sendall": lambda self, data, sent=sent: sent.append(data)})()  # no network
        conn.request("GET", "/hostname", headers={} if keepalive else {"Connection": "close"})
        assert probe.http_get(host, port, "/hostname", keepalive) == b"".join(sent)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\npod-a\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\npod\r\n3\r\n-a\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npod-a\n",  # no length: the body ends at close
])
def test_each_connection_is_new_and_the_body_names_the_backend(monkeypatch, reply):
    server = Canned(reply)
    with served(server) as port:
        rows = run_lb(monkeypatch, port, 5)
    assert [r["i"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["conn"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["backend"] for r in rows} == {"pod-a"} and {r["status"] for r in rows} == {200}
    assert all(r["error"] is None and 0 < r["connect_us"] <= r["total_us"] for r in rows)
    assert len(server.requests) == 5 and all(b"\r\nConnection: close\r\n" in r for r in server.requests)


class Hostname(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        body = b"pod-b"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_keepalive_reuses_one_connection(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostname)
    server.daemon_threads = True
    accepted = []
    original = server.process_request
    server.process_request = lambda req, addr: (accepted.append(addr), original(req, addr))  # type: ignore[method-assign]
    with served(server) as port:
        rows = run_lb(monkeypatch, port, 20, keepalive=True)
    assert len(accepted) == 1
    assert {r["conn"] for r in rows} == {1} and {r["backend"] for r in rows} == {"pod-b"}
    assert rows[0]["connect_us"] > 0 and all(r["connect_us"] == 0.0 for r in rows[1:])


def test_a_server_that_says_close_gets_a_new_connection_even_with_keepalive(monkeypatch):
    server = Canned(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\npod-c")
    with served(server) as port:
        rows = run_lb(monkeypatch, port, 3, keepalive=True)
    assert [r["conn"] for r in rows] == [1, 2, 3] and all(r["connect_us"] > 0 for r in rows)


@pytest.mark.parametrize(("reply", "error"), [
    (b"", "RemoteDisconnected: Remote end closed connection without response"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "BadStatusLine: SSH-2.0-OpenSSH\r\n"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "IncompleteRead: IncompleteRead(5 bytes read, 5 more expected)"),
])
def test_broken_replies_are_error_rows_like_http_clients(monkeypatch, reply, error):
    with served(Canned(reply)) as port:
        rows = run_lb(monkeypatch, port, 2)
    assert [r["error"] for r in rows] == [error, error]
    assert all(r["backend"] is None and r["status"] is None and r["connect_us"] > 0 for r in rows)


def test_refused_connections_have_no_connect_time(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rows = run_lb(monkeypatch, port, 2)
    assert all(r["error"].startswith("ConnectionRefusedError") and r["connect_us"] is None for r in rows)
    assert [r["conn"] for r in rows] == [0, 0]


def test_table_lines_stay_short_and_parse_back_in_order(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(probe.sys, "stdout", out)
    table = probe.Table(("i", "name"))
    for i in range(2000):
        table.add(i, f"backend-{i % 7}")
    table.flush()
    lines = out.getvalue().splitlines()
    assert 1 < len(lines) < 20 and max(map(len, lines)) < 16 * 1024  # runtimes split longer log lines
    rows, done = parse_lines(out.getvalue() + '{"done":"lb","seconds":1.0}\n')
    assert done and rows == [{"i": i, "name": f"backend-{i % 7}"} for i in range(2000)]
