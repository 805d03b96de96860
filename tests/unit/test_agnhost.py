"""agnhost's servers: one write per response, HTTP/1.1 keep-alive (loopback only), and
listening like Go's ``net.Listen(":port")`` (in a throwaway network namespace)."""

from __future__ import annotations

import errno
import http.client
import os
import socket
import socketserver
import threading
import time
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Callable, Iterator

import pytest

from k8snet.lab.images import agnhost
from k8snet.lab.net.nsutil import run_in_netns_sync, write_sysctls_sync
from tests.unit._netns import scratch_netns


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
def served(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """Runs ``server`` in a thread for the block, then shuts it down and closes it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(handler: type) -> Iterator[CountingServer]:
    with served(CountingServer(handler)) as server:
        yield server


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


def hostname_server(close: bool = False) -> agnhost.HostnameServer:
    return agnhost.HostnameServer(0, agnhost.HostnameResponses(agnhost.HOSTNAME.encode(), close))


def test_serve_hostname_keeps_the_connection_alive():
    with served(hostname_server()) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        for _ in range(3):
            resp, body = get(conn, "/")
            assert resp.version == 11 and resp.status == 200
            assert body == agnhost.HOSTNAME.encode()
            assert resp.getheader("Connection") is None
            assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
            assert resp.getheader("Date", "").endswith(" GMT")
        conn.close()
    assert server.connections == 1


def test_serve_hostname_close_ends_each_connection():
    with served(hostname_server(close=True)) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        for _ in range(2):
            resp, body = get(conn, "/")  # http.client reconnects after "Connection: close"
            assert resp.getheader("Connection") == "close" and body == agnhost.HOSTNAME.encode()
        conn.close()
    assert server.connections == 2


def exchange(port: int, *sends: bytes) -> bytes:
    """Sends each piece in turn on one connection, then reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for piece in sends:
            sock.sendall(piece)
            time.sleep(0.01)  # separate segments, so the server sees the request in parts
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def responses(raw: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """(status line, headers, body) of each response in ``raw``, by Content-Length."""
    out = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        size = int(headers.get("content-length", len(raw)))
        out.append((status, headers, raw[:size]))
        raw = raw[size:]
    return out


HOST = agnhost.HOSTNAME.encode()


@pytest.fixture
def hostname_port() -> Iterator[int]:
    with served(hostname_server()) as server:
        yield server.server_address[1]


def test_serve_hostname_answers_every_method_and_path_and_pipelined_requests(hostname_port):
    # like Go's handler on "/": the path and method do not matter; a POST's body is read
    # past before the next request on the connection
    got = responses(exchange(hostname_port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                            b"POST /b?c=d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                                            b"PUT / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert [(status, body) for status, _, body in got] == [("HTTP/1.1 200 OK", HOST)] * 3
    assert [h.get("connection") for _, h, _ in got] == [None, None, "close"]


def test_serve_hostname_reads_requests_that_come_in_pieces(hostname_port):
    got = responses(exchange(hostname_port, b"GET / HT", b"TP/1.1\r\nHo", b"st: x\r\nContent-Le",
                             b"ngth: 3\r\nConnection: close\r\n\r\nab", b"c"))
    assert [(status, body) for status, _, body in got] == [("HTTP/1.1 200 OK", HOST)]


def test_serve_hostname_speaks_http_1_0_and_head_as_go(hostname_port):
    status, headers, body = responses(exchange(hostname_port, b"GET / HTTP/1.0\r\n\r\n"))[0]
    assert (status, headers["connection"], body) == ("HTTP/1.0 200 OK", "close", HOST)
    with socket.create_connection(("127.0.0.1", hostname_port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        time.sleep(0.05)
        first = sock.recv(65536)
        assert b"\r\nConnection: keep-alive\r\n" in first and first.endswith(HOST)
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = b""
        while data := sock.recv(65536):
            rest += data
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"\r\n\r\n")  # HEAD: no body
    assert f"Content-Length: {len(HOST)}\r\n".encode() in rest


@pytest.mark.parametrize("request_bytes, status", [
    (b"nonsense\r\n\r\n", "400 Bad Request"),
    (b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),  # HTTP/1.1 without Host, refused as Go does
    (b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", "400 Bad Request"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400 Bad Request"),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported"),
])
def test_serve_hostname_refuses_bad_requests_and_closes(hostname_port, request_bytes, status):
    got = responses(exchange(hostname_port, request_bytes + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert [(s, h["connection"], b) for s, h, b in got] == [(f"HTTP/1.1 {status}", "close", status.encode())]


def test_serve_hostname_request_head_parse():
    head = b"GET / HTTP/1.1\r\nHost: 10.96.0.10\r\nConnection: close"
    assert not agnhost.HttpRequest(head).keep_alive
    assert agnhost.HttpRequest(head.replace(b"close", b"x")).keep_alive
    with pytest.raises(agnhost.BadRequest):
        agnhost.HttpRequest(b"GET / HTTP/1.1")  # no Host


def test_serve_hostname_never_makes_a_connection_wait_for_another(hostname_port):
    """One thread, but idle kept-alive connections and a half-sent request hold up no
    one: a new connection is answered at once."""
    held = [http.client.HTTPConnection("127.0.0.1", hostname_port, timeout=5) for _ in range(3)]
    for conn in held:
        assert get(conn, "/")[1] == HOST
    with socket.create_connection(("127.0.0.1", hostname_port), timeout=5) as partial:
        partial.sendall(b"GET / HTTP/1.1\r\nHost:")
        fresh = http.client.HTTPConnection("127.0.0.1", hostname_port, timeout=2)
        assert get(fresh, "/")[1] == HOST
        partial.sendall(b" x\r\n\r\n")
        assert partial.recv(65536).endswith(HOST)
    for conn in [*held, fresh]:
        assert get(conn, "/")[1] == HOST  # still open
        conn.close()


# -- listening like Go -------------------------------------------------------------------

def test_peer_addresses_print_like_go():
    assert agnhost.go_addr(("::ffff:10.244.1.5", 40000, 0, 0)) == "10.244.1.5:40000"
    assert agnhost.go_addr(("::1", 40000, 0, 0)) == "[::1]:40000"
    assert agnhost.go_addr(("10.244.1.5", 40000)) == "10.244.1.5:40000"


def test_without_ipv6_sockets_the_listener_is_ipv4(monkeypatch):
    real = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args: object, **kwargs: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, *args, **kwargs)

    monkeypatch.setattr(agnhost.socket, "socket", no_ipv6)
    assert agnhost.wildcard_family() == socket.AF_INET


@contextmanager
def pod_netns(ipv6: bool) -> Iterator[str]:
    """A network namespace with only ``lo`` up, like a pod's loopback side."""
    with scratch_netns(lo_up=True) as ns:
        if not ipv6:
            write_sysctls_sync(ns, {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.lo.disable_ipv6": 1})
        yield ns


@contextmanager
def listening(ns: str, server_cls: type, handler: object) -> Iterator[socketserver.BaseServer]:
    """``server_cls(0, handler)`` made in ``ns`` (its socket is that namespace's), served here."""
    server = run_in_netns_sync(ns, server_cls, 0, handler)
    server.daemon_threads = True
    with served(server):
        yield server


def http_from(ns: str, host: str, port: int, path: str) -> str:
    def get() -> str:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read().decode()
        finally:
            conn.close()
    return run_in_netns_sync(ns, get)


def tcp_from(ns: str, host: str, port: int) -> str:
    def read() -> str:
        with socket.create_connection((host, port), timeout=5) as s:
            received = b""
            while data := s.recv(65536):
                received += data
            return received.decode()
    return run_in_netns_sync(ns, read)


def udp_from(ns: str, host: str, port: int, message: bytes) -> str:
    def ask() -> str:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(message, (host, port))
            return s.recv(65536).decode()
    return run_in_netns_sync(ns, ask)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_netexec_answers_on_ipv6_and_ipv4_loopback_like_go():
    # busybox wget http://localhost:8080 tries ::1 first: Go's dual-stack listener takes it.
    with pod_netns(ipv6=True) as ns:
        with listening(ns, agnhost.HttpListener, agnhost.NetexecHandler) as web:
            port = web.server_address[1]
            assert web.socket.family == socket.AF_INET6
            assert http_from(ns, "::1", port, "/hostname") == agnhost.HOSTNAME
            assert http_from(ns, "::1", port, "/clientip").startswith("[::1]:")
            assert http_from(ns, "127.0.0.1", port, "/clientip").startswith("127.0.0.1:")  # not ::ffff:
        with listening(ns, agnhost.UdpListener, agnhost.UdpEcho) as udp:
            port = udp.server_address[1]
            assert udp_from(ns, "::1", port, b"hostname") == agnhost.HOSTNAME
            assert udp_from(ns, "127.0.0.1", port, b"clientip").startswith("127.0.0.1:")
        with listening(ns, agnhost.TcpListener, agnhost.WriteHostname) as tcp:
            assert tcp_from(ns, "::1", tcp.server_address[1]) == agnhost.HOSTNAME
            assert tcp_from(ns, "127.0.0.1", tcp.server_address[1]) == agnhost.HOSTNAME
        with listening(ns, agnhost.HostnameServer, agnhost.HostnameResponses(HOST, False)) as web:
            assert http_from(ns, "::1", web.server_address[1], "/") == agnhost.HOSTNAME
            assert http_from(ns, "127.0.0.1", web.server_address[1], "/") == agnhost.HOSTNAME


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_serve_hostname_answers_on_ipv4_when_the_pod_has_no_ipv6_loopback():
    with pod_netns(ipv6=False) as ns:
        with listening(ns, agnhost.HostnameServer, agnhost.HostnameResponses(HOST, False)) as web:
            port = web.server_address[1]
            assert http_from(ns, "127.0.0.1", port, "/") == agnhost.HOSTNAME
            with pytest.raises(OSError):
                http_from(ns, "::1", port, "/")  # no ::1 in this namespace at all


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_listener_threads_are_reused_and_never_make_a_connection_wait():
    """One thread serves connections that come one after another; idle kept-alive
    connections each hold a thread and a new connection still gets its own at once;
    closing the server ends its threads."""
    server = agnhost.HttpListener(0, agnhost.NetexecHandler)
    port = server.server_address[1]
    before = threading.active_count()
    with served(server):
        for _ in range(20):
            conn = http.client.HTTPConnection("localhost", port, timeout=5)
            assert get(conn, "/hostname")[1] == agnhost.HOSTNAME.encode()
            conn.close()
            wait_until(lambda: server._idle == server._workers)  # the thread sees the close, then is idle
        assert server._workers == 1
        held = [http.client.HTTPConnection("localhost", port, timeout=5) for _ in range(3)]
        for conn in held:
            get(conn, "/hostname")  # kept alive: each connection's thread now waits for its next request
        fresh = http.client.HTTPConnection("localhost", port, timeout=2)
        assert get(fresh, "/hostname")[1] == agnhost.HOSTNAME.encode()
        assert server._workers >= 4  # four connections open at once, a thread each
        for conn in [*held, fresh]:
            conn.close()
    wait_until(lambda: threading.active_count() <= before)
