"""The lab's agnhost: the e2e test image's subcommands the networking tests use.

Standard library only (it runs as a container's process). Behaviour follows
kubernetes test/images/agnhost: ``netexec`` (HTTP + UDP test server), ``serve-hostname``,
``pause``, ``connect``, ``dns-suffix``, ``dns-server-list``, ``etc-hosts``.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import queue
import selectors
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOSTNAME = socket.gethostname()


def _bool(value: str) -> bool:
    return value.lower() in ("1", "t", "true", "yes")


# -- listening like Go's net.Listen(":port") -------------------------------------------

def wildcard_family() -> socket.AddressFamily:
    """The family Go picks for a wildcard listen (``favoriteAddrFamily``, ipsock_posix.go).

    IPv6 when the kernel can bind an IPv4-mapped address on a dual-stack socket (Go's
    ``supportsIPv4map`` probe): one socket on "::" then takes IPv4 and IPv6 alike, so
    ``localhost`` works whether a client tries ::1 or 127.0.0.1 first. Else IPv4.
    """
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::ffff:127.0.0.1", 0))
    except OSError:  # no IPv6 in this kernel or namespace
        return socket.AF_INET
    return socket.AF_INET6


def go_addr(address: tuple) -> str:
    """A peer address as Go's ``net.Addr.String()`` prints it: IPv4-mapped addresses
    in dotted form, IPv6 in brackets (what /clientip answers)."""
    host, port = address[0], address[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def wildcard_host(family: int) -> str:
    return "::" if family == socket.AF_INET6 else ""


def dual_stack(sock: socket.socket) -> None:
    """Before bind: an IPv6 wildcard socket also takes IPv4 (as Go's listeners do)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)


class _WildcardListener:
    """A socketserver server on every address of ``port``, dual-stack where Go would be."""

    address_family: int  # as socketserver declares it

    def __init__(self, port: int, handler: type) -> None:
        self.address_family = wildcard_family()
        super().__init__((wildcard_host(self.address_family), port), handler)  # type: ignore[call-arg]

    def server_bind(self) -> None:
        dual_stack(self.socket)  # type: ignore[attr-defined]
        super().server_bind()  # type: ignore[misc]


class _ReusedThreads:
    """Each connection (or datagram) on its own thread, like Go's goroutine per
    connection, but threads are reused: socketserver's ThreadingMixIn starts a new
    thread per connection, and that start costs more than the whole request (measured
    on 2 cores: 5,000 new connections to serve-hostname 2.5-2.9 s with a thread each,
    1.1-1.4 s with reused threads, 0.85-1.4 s with none), so it, not the Service, was
    what a 10,000-connection load-balancing measurement timed. A new thread starts
    only when no thread is idle, so concurrency stays unbounded as in Go: a kept-alive
    connection never waits for another to end.

    Invariant: ``_idle`` equals free threads minus queued connections, so every queued
    connection has a free thread (``_idle`` never goes below 0)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = 0
        self._workers = 0
        self._lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: object, client_address: object) -> None:
        with self._lock:
            start = self._idle == 0
            if start:
                self._workers += 1
            else:
                self._idle -= 1
        self._jobs.put((request, client_address))
        if start:
            threading.Thread(target=self._work, daemon=True).start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self.process_request_thread(*job)  # type: ignore[attr-defined]  # ThreadingMixIn's
            with self._lock:
                self._idle += 1

    def server_close(self) -> None:
        super().server_close()  # type: ignore[misc]
        for _ in range(self._workers):
            self._jobs.put(None)  # each thread ends after its current connection


class HttpListener(_WildcardListener, _ReusedThreads, ThreadingHTTPServer):
    """Go's ``http.ListenAndServe(":port", ...)``."""


class TcpListener(_WildcardListener, _ReusedThreads, socketserver.ThreadingTCPServer):
    """Go's ``net.Listen("tcp", ":port")`` (SO_REUSEADDR, as Go sets on listeners)."""

    allow_reuse_address = True


class UdpListener(_WildcardListener, _ReusedThreads, socketserver.ThreadingUDPServer):
    """Go's ``net.ListenUDP("udp", ":port")``."""


# -- netexec -----------------------------------------------------------------------

class _State:
    shutting_down = False


def dial(host: str, port: int, request: str, protocol: str, tries: int, timeout: float = 5.0) -> dict:
    """netexec's /dial: makes ``tries`` requests and collects responses and errors."""
    responses, errors = [], []
    for _ in range(tries):
        try:
            if protocol == "udp":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(timeout)
                    s.sendto(request.encode(), (host, port))
                    responses.append(s.recv(65536).decode().strip())
            else:
                url = f"http://{host}:{port}/{request.lstrip('/')}"
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    responses.append(r.read().decode())
        except Exception as err:  # noqa: BLE001 - every failure is reported to the caller
            errors.append(str(err))
    return {"responses": responses, "errors": errors}


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, like Go's net/http, and each response in one write.

    http.server writes the headers and then the body: on a kept-alive connection
    the body then waits for the client's delayed ACK of the headers (Nagle), about
    40 ms per request. One write (and TCP_NODELAY for anything else) avoids that."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY

    def respond(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8", *,
                close: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")  # also makes the handler close after this one
        # end_headers' blank line, then the body, in http.server's own (private, so
        # untyped) header buffer: one write for the whole response
        self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
        self.flush_headers()


class NetexecHandler(KeepAliveHandler):
    def log_message(self, fmt: str, *args: object) -> None:  # one line per request on stderr, like Go's log
        sys.stderr.write(f'{time.strftime("%Y/%m/%d %H:%M:%S")} {fmt % args}\n')

    def _send(self, code: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self.respond(code, body.encode(), content_type)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        path = url.path
        if path == "/":
            self._send(200, f"NOW: {time.strftime('%Y-%m-%d %H:%M:%S')}")
        elif path in ("/hostname", "/hostName"):
            self._send(200, HOSTNAME)
        elif path == "/echo":
            self._send(int(q.get("code", 200)), q.get("msg", ""))
        elif path == "/clientip":
            self._send(200, go_addr(self.client_address))
        elif path == "/header":
            if "key" in q:
                self._send(200, self.headers.get(q["key"], ""))
            else:
                self._send(200, json.dumps({k: [v] for k, v in self.headers.items()}), "application/json")
        elif path == "/healthz":
            self._send(200, "ok")
        elif path == "/readyz":
            self._send(503, "shutting down") if _State.shutting_down else self._send(200, "ok")
        elif path in ("/shell",):
            cmd = q.get("shellCommand") or q.get("cmd", "")
            r = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True)
            body = {"output": r.stdout}
            if r.returncode:
                body["error"] = f"exit status {r.returncode}"
            self._send(417 if r.returncode else 200, json.dumps(body), "application/json")
        elif path == "/dial":
            self._dial(q)
        elif path == "/redirect":
            self.send_response(int(q.get("code", 303)))
            self.send_header("Location", q.get("location", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in ("/exit", "/shutdown"):
            code = int(q.get("code", 0))
            self._send(200, "")
            threading.Timer(float(q.get("wait", 0) or 0), lambda: os._exit(code)).start()
        else:
            self._send(404, "404 page not found\n")

    do_POST = do_GET

    def _dial(self, q: dict) -> None:
        try:
            host, port, request = q["host"], int(q["port"]), q["request"]
        except (KeyError, ValueError):
            self._send(400, "host, port and request are required")
            return
        protocol = q.get("protocol", "http")
        result = dial(host, port, request, protocol, int(q.get("tries", 1)))
        ok = bool(result["responses"]) and len(result["errors"]) < int(q.get("tries", 1))
        self._send(200 if ok else 417, json.dumps(result), "application/json")


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        cmd = data.decode(errors="replace").strip()
        if cmd == "hostname":
            reply = HOSTNAME
        elif cmd.startswith("echo "):
            reply = cmd[5:]
        elif cmd == "clientip":
            reply = go_addr(self.client_address)
        else:
            reply = ""
        sock.sendto(reply.encode(), self.client_address)


def netexec(args: argparse.Namespace) -> None:
    def on_term(*_: object) -> None:
        _State.shutting_down = True
        threading.Timer(args.delay_shutdown, lambda: os._exit(0)).start()
    signal.signal(signal.SIGTERM, on_term)
    if args.udp_port > 0:
        udp = UdpListener(args.udp_port, UdpEcho)
        threading.Thread(target=udp.serve_forever, daemon=True).start()
        print(f"Started UDP server on port {args.udp_port}", flush=True)
    http = HttpListener(args.http_port, NetexecHandler)
    print(f"Started HTTP server on port {args.http_port}", flush=True)
    http.serve_forever()


# -- serve-hostname ---------------------------------------------------------------

# serve-hostname's HTTP side is Go's ``http.HandleFunc("/", ...)`` writing the hostname:
# every method and path gets it. It has its own small HTTP/1.x server -- one thread, a
# selector, the response bytes built once -- because that is what a load-balancing
# measurement times: 10,000 new connections spread over 3 of these on 2 cores, where
# http.server's per-request machinery (an email.message per request's headers, a
# buffered reader and writer per connection, a thread hand-off per connection) cost more
# CPU than the kernel's NAT and TCP work for the connection (docs/performance.md,
# "Measurement paths"). Requests are parsed as Go's net/http parses them, as far as a
# handler that ignores the request can tell.

MAX_HEADER_BYTES = (1 << 20) + 4096  # Go's http.DefaultMaxHeaderBytes plus its 4 KB slack


class BadRequest(Exception):
    """A request Go's server refuses before the handler: the status line to answer."""


class HttpRequest:
    """The parts of one request's head that decide the response (the path does not)."""

    __slots__ = ("version", "head_only", "keep_alive", "body_bytes", "chunked")

    def __init__(self, head: bytes) -> None:
        lines = head.decode("iso-8859-1").split("\n")
        parts = lines[0].rstrip("\r").split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise BadRequest("400 Bad Request")
        method, _, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest("505 HTTP Version Not Supported" if version.startswith("HTTP/") else "400 Bad Request")
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.rstrip("\r").partition(":")
            if not colon or not name or name != name.strip():
                raise BadRequest("400 Bad Request")
            name = name.lower()
            fields[name] = f"{fields[name]}, {value.strip()}" if name in fields else value.strip()
        if version == "HTTP/1.1" and "host" not in fields:
            raise BadRequest("400 Bad Request")  # Go: "missing required Host header"
        tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
        self.version = version
        self.head_only = method == "HEAD"
        # HTTP/1.1 stays open unless the client says close; 1.0 only if it asks for keep-alive
        self.keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        self.chunked = "chunked" in fields.get("transfer-encoding", "").lower()
        length = fields.get("content-length", "0")
        if not length.isdigit():
            raise BadRequest("400 Bad Request")
        self.body_bytes = 0 if self.chunked else int(length)


def request_head_end(buf: bytes) -> int:
    """Where the head of the first request in ``buf`` ends (after its empty line), or -1.
    Lines end in CRLF or a bare LF, as Go's textproto accepts."""
    crlf, lf = buf.find(b"\r\n\r\n"), buf.find(b"\n\n")
    ends = [i + n for i, n in ((crlf, 4), (lf, 2)) if i >= 0]
    return min(ends) if ends else -1


class HostnameResponses:
    """serve-hostname's responses, as Go's net/http writes them (Date, Content-Length,
    Content-Type; ``Connection: close`` when it will close, ``keep-alive`` to an HTTP/1.0
    client that asked to keep the connection), built once per second: the Date header
    is the only part that changes."""

    def __init__(self, body: bytes, close: bool) -> None:
        self.body = body
        self.close = close  # --close: "Connection: close" on every response, then close
        self._second = -1
        self._built: dict[tuple[str, bool, bool], bytes] = {}

    def ok(self, req: HttpRequest) -> tuple[bytes, bool]:
        """(the response, whether the connection closes after it)."""
        keep = req.keep_alive and not self.close and not req.chunked
        now = int(time.time())
        if now != self._second:
            self._second, self._built = now, {}
        key = (req.version, keep, req.head_only)
        if key not in self._built:
            connection = "" if keep and req.version == "HTTP/1.1" else \
                "Connection: keep-alive\r\n" if keep else "Connection: close\r\n"
            head = (f"{req.version} 200 OK\r\nDate: {email.utils.formatdate(now, usegmt=True)}\r\n"
                    f"Content-Length: {len(self.body)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"{connection}\r\n").encode("ascii")
            self._built[key] = head if req.head_only else head + self.body
        return self._built[key], not keep

    @staticmethod
    def refusal(status: str) -> bytes:
        """Go's answer to a request it cannot parse; the connection then closes."""
        return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                f"{status}").encode("ascii")


class _HttpConnection:
    __slots__ = ("sock", "inbuf", "outbuf", "skip", "closing", "events")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.skip = 0  # request body bytes still to discard
        self.closing = False  # close once outbuf is sent
        self.events = 0  # what the selector watches it for (0: not registered)


class HostnameServer:
    """serve-hostname's HTTP listener on every address of ``port``: one thread serving
    every connection through a selector (epoll). Concurrency is unbounded as with Go's
    goroutine per connection -- an idle kept-alive connection is only a registered
    socket, it never holds up another -- and a new connection costs an accept, one
    read, one write and a close, with no thread to wake: its request has usually
    arrived by the time it is accepted, so it is read at once and the connection is
    only registered with the selector if it has not (or stays open)."""

    def __init__(self, port: int, responses: HostnameResponses) -> None:
        self.responses = responses
        self.socket = socket.socket(wildcard_family(), socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go sets on listeners
        dual_stack(self.socket)
        self.socket.bind((wildcard_host(self.socket.family), port))
        self.socket.listen(4096)  # Go's backlog: the kernel's somaxconn caps it
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.connections = 0  # accepted so far (tests count reconnects with it)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.socket, selectors.EVENT_READ)
        self._stop = False
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            while not self._stop:
                for key, events in self._selector.select(0.5):
                    if key.data is None:
                        self._accept()
                    elif events & selectors.EVENT_READ:
                        self._read(key.data)
                    else:
                        self._write(key.data)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stops ``serve_forever`` (running in another thread) and waits until it has
        returned, as socketserver's ``shutdown`` does."""
        self._stop = True
        self._stopped.wait()

    def server_close(self) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                key.data.sock.close()
        self._selector.close()
        self.socket.close()

    def _accept(self) -> None:
        # one connection per wake-up: trying for a second would mostly cost a failed
        # accept call, and the selector reports the listener again while more wait
        try:
            sock, _ = self.socket.accept()
        except OSError:  # e.g. gone already, or out of file descriptors: Go's server retries later
            return
        self.connections += 1
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Go's default
        self._read(_HttpConnection(sock))

    def _watch(self, conn: _HttpConnection, events: int) -> None:
        """Has the selector watch ``conn`` for ``events`` (0: not at all), with a system
        call only when that changes."""
        if events == conn.events:
            return
        if not events:
            self._selector.unregister(conn.sock)
        elif not conn.events:
            self._selector.register(conn.sock, events, conn)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: _HttpConnection) -> None:
        self._watch(conn, 0)
        conn.sock.close()

    def _read(self, conn: _HttpConnection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            self._watch(conn, selectors.EVENT_READ)
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        buf = conn.inbuf + data
        while not conn.closing:
            if conn.skip:  # the previous request's body: Go's server reads it before the next
                dropped = min(conn.skip, len(buf))
                conn.skip -= dropped
                buf = buf[dropped:]
                if conn.skip:
                    break
            end = request_head_end(buf)
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    conn.outbuf += HostnameResponses.refusal("431 Request Header Fields Too Large")
                    conn.closing = True
                break
            try:
                request = HttpRequest(buf[:end].rstrip(b"\r\n"))
            except BadRequest as err:
                conn.outbuf += HostnameResponses.refusal(str(err))
                conn.closing = True
                break
            buf = buf[end:]
            conn.skip = request.body_bytes
            response, conn.closing = self.responses.ok(request)
            conn.outbuf += response
        conn.inbuf = b"" if conn.closing else buf
        self._write(conn)

    def _write(self, conn: _HttpConnection) -> None:
        try:
            sent = conn.sock.send(conn.outbuf) if conn.outbuf else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        conn.outbuf = conn.outbuf[sent:]
        if conn.outbuf:  # a full socket buffer: wait until it drains (reading nothing meanwhile)
            self._watch(conn, selectors.EVENT_WRITE)
        elif conn.closing:
            self._close(conn)
        else:  # kept alive: wait for its next request
            self._watch(conn, selectors.EVENT_READ)


class WriteHostname(socketserver.BaseRequestHandler):
    """serve-hostname --tcp: the hostname, then the connection ends."""

    def handle(self) -> None:
        self.request.sendall(HOSTNAME.encode())


def _await_deletion(*_: object) -> None:
    """serve-hostname's SIGTERM handler, as the real one: it says so and waits out the grace period."""
    print("Awaiting pod deletion.", flush=True)
    time.sleep(60)


def serve_hostname(args: argparse.Namespace) -> None:
    if args.udp and args.http:
        sys.exit("Can't set both --http and --udp")  # the real flag check
    signal.signal(signal.SIGTERM, _await_deletion)
    print(f"Serving on port {args.port}.", flush=True)
    if args.udp:
        class Reply(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request[1].sendto(HOSTNAME.encode(), self.client_address)
        UdpListener(args.port, Reply).serve_forever()
    elif args.tcp:
        TcpListener(args.port, WriteHostname).serve_forever()
    else:
        HostnameServer(args.port, HostnameResponses(HOSTNAME.encode(), args.close)).serve_forever()


# -- small commands -------------------------------------------------------------------

def pause(_: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    print("Paused", flush=True)
    while True:
        signal.pause()


def connect(args: argparse.Namespace) -> None:
    """Prints an error prefixed UNKNOWN, TIMEOUT, DNS, REFUSED or OTHER, and exits 1 on failure."""
    host, _, port = args.dest.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=args.timeout).close()
    except socket.gaierror as err:
        sys.exit(f"DNS: {err}")
    except ConnectionRefusedError as err:
        sys.exit(f"REFUSED: {err}")
    except TimeoutError as err:
        sys.exit(f"TIMEOUT: {err}")
    except OSError as err:
        sys.exit(f"OTHER: {err}")


def _resolv_field(key: str) -> list[str]:
    out = []
    with open("/etc/resolv.conf") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == key:
                out.extend(parts[1:])
    return out


def _duration(value: str) -> float:
    value = value.strip()
    for suffix, mult in (("ms", 0.001), ("s", 1), ("m", 60)):
        if value.endswith(suffix) and value[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(value[:-len(suffix)]) * mult
    return float(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agnhost")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("netexec")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--udp-port", type=int, default=8081)
    p.add_argument("--sctp-port", type=int, default=-1)
    p.add_argument("--delay-shutdown", type=int, default=0)
    p.set_defaults(fn=netexec)
    p = sub.add_parser("serve-hostname")
    p.add_argument("--port", type=int, default=9376)
    p.add_argument("--http", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("--udp", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--tcp", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--close", type=_bool, nargs="?", const=True, default=False)
    p.set_defaults(fn=serve_hostname)
    sub.add_parser("pause").set_defaults(fn=pause)
    p = sub.add_parser("connect")
    p.add_argument("dest")
    p.add_argument("--timeout", type=_duration, default=5.0)
    p.add_argument("--protocol", default="tcp")
    p.set_defaults(fn=connect)
    sub.add_parser("dns-suffix").set_defaults(fn=lambda a: print(",".join(_resolv_field("search"))))
    sub.add_parser("dns-server-list").set_defaults(fn=lambda a: print(",".join(_resolv_field("nameserver"))))
    sub.add_parser("etc-hosts").set_defaults(fn=lambda a: print(open("/etc/hosts").read(), end=""))
    # Go's flag package accepts --flag=value and -flag value alike
    args = parser.parse_args(["-" + a if a.startswith("-") and not a.startswith("--") and len(a) > 2 else a
                              for a in (sys.argv[1:] if argv is None else argv)])
    if args.command == "serve-hostname" and (args.udp or args.tcp) and not any("-http" in a for a in sys.argv):
        args.http = False  # --udp alone means UDP; only an explicit --http conflicts
    args.fn(args)


if __name__ == "__main__":
    main()
