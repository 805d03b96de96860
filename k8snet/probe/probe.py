#!/usr/bin/env python3
"""k8snet's in-cluster probe: one stdlib-only script, run by ``python3 probe.py MODE ...``.

It is shipped in a ConfigMap and runs in any ``python`` image pod, so measurements
need neither exec nor a custom image and work the same on every cluster. Results
are JSON lines on stdout, which the helper reads from the pod's log: one object per
result, or for the many rows of ``lb`` a few ``{"columns": [...], "rows": [...]}``
tables; the last line is ``{"done": MODE, "seconds": ...}``. stdout is block-buffered
(not ``-u``): a line per write would cost a system call per row and a log record per
row in the kubelet; a server mode flushes its first line itself.

Modes:
  lb    N HTTP requests to host:port; which backend (pod name in the body) answered
        each, connect and total time in µs; a new connection per request, or one
        kept-alive HTTP/1.1 connection for all of them (``--keepalive``).
  dns   lookups of names through the pod's own resolver configuration: the stub
        resolver's search-list expansion under ``ndots`` is emulated with our own
        UDP queries (A and AAAA in parallel per name tried, like getaddrinfo with
        AF_UNSPEC), so each query is counted and timed; getaddrinfo for comparison.
  rtt   raw UDP and TCP round trips to an ``echo`` peer (the baseline).
  echo  serve UDP and TCP echo on a port until killed.
  dial  pod-to-pod: ask a server (agnhost netexec) which source IP it saw, directly
        and through another netexec pod's /dial.
  env   print the pod's service environment variables.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


def emit(**record: object) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


def now_us() -> float:
    return time.perf_counter_ns() / 1000.0


# -- lb -------------------------------------------------------------------------------

LB_COLUMNS = ("i", "backend", "status", "connect_us", "total_us", "conn", "error")


def http_get(host: str, port: int, path: str, keepalive: bool) -> bytes:
    """The bytes ``http.client.HTTPConnection(host, port).request("GET", path)`` sends
    (request line, Host with the port unless it is 80, Accept-Encoding: identity, and
    ``Connection: close`` unless kept alive), built once for every connection."""
    authority = f"[{host}]" if ":" in host else host
    if port != 80:
        authority += f":{port}"
    lines = [f"GET {path} HTTP/1.1", f"Host: {authority}", "Accept-Encoding: identity"]
    if not keepalive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class HttpResponses:
    """Reads the HTTP/1.1 responses of one connection as http.client does (status line,
    headers, a Content-Length, chunked or read-to-close body; the same exceptions), but
    without building a header object per response: the per-connection cost of
    http.client is most of the probe's own time in a 10,000-connection run."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._more():
                raise http.client.IncompleteRead(self.buf)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._more():
                raise http.client.IncompleteRead(self.buf, size - len(self.buf))
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def _chunked(self) -> bytes:
        body = []
        while size := int(self._line().split(b";", 1)[0], 16):
            body.append(self._exactly(size))
            self._line()
        while self._line():  # trailers, up to the empty line
            pass
        return b"".join(body)

    def next(self) -> tuple[int, bytes, bool]:
        """(status, body, whether the server closes the connection after it)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                if not self.buf:
                    raise http.client.RemoteDisconnected("Remote end closed connection without response")
                raise http.client.IncompleteRead(self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise http.client.BadStatusLine(status_line + "\r\n")  # worded as http.client words it
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        status = int(code)
        connection = headers.get("connection", "")
        will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", ""):
            body = self._chunked()
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:  # the body ends when the server closes
            while self._more():
                pass
            body, self.buf, will_close = self.buf, b"", True
        return status, body, will_close


class Table:
    """Rows written as a few JSON lines ``{"columns": [...], "rows": [[...], ...]}`` of
    at most ~8 KB each (well under the 16 KB at which container runtimes split a log
    line), instead of one JSON object per row: fewer writes for the probe and fewer log
    records for the kubelet, with the column names sent once per line."""

    LINE_BYTES = 8192

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.head = '{"columns":' + json.dumps(list(columns), separators=(",", ":")) + ',"rows":['
        self.rows: list[str] = []
        self.size = 0

    def add(self, *row: object) -> None:
        text = json.dumps(row, separators=(",", ":"))
        self.rows.append(text)
        self.size += len(text) + 1
        if self.size >= self.LINE_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            sys.stdout.write(self.head + ",".join(self.rows) + "]}\n")
            self.rows, self.size = [], 0


def ip_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple] | None:
    """(family, socket address) when ``host`` is an IP literal, else None. For a literal
    ``socket.create_connection`` resolves the same single address on every call (a
    getaddrinfo call, IDNA encoding and enum conversions, ~10 µs a connection here);
    a name is still resolved per connection, so a headless Service's DNS answers vary
    as they would for any client."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_NUMERICHOST)[0]
    except socket.gaierror:
        return None
    return family, address


def connect(host: str, port: int, timeout: float, literal: tuple[socket.AddressFamily, tuple] | None) -> socket.socket:
    """``socket.create_connection((host, port), timeout)``, without its per-call lookup for an IP literal."""
    if literal is None:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(literal[0], socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(literal[1])
    except BaseException:
        sock.close()
        raise
    return sock


def lb(host: str, port: int, path: str, count: int, keepalive: bool, timeout: float) -> None:
    """One request per connection (kube-proxy balances connections, not requests),
    or all requests on one kept-alive connection to show that it pins one backend.
    ``connect_us``: socket creation to connected (0 on a reused connection);
    ``total_us``: from the same start to the whole response read."""
    request = http_get(host, port, path, keepalive)
    literal = ip_address(host, port)
    table = Table(LB_COLUMNS)
    sock: socket.socket | None = None
    responses: HttpResponses | None = None
    conn_no = 0
    for i in range(count):
        connect_us: float | None = None
        t0 = now_us()
        try:
            if sock is None or responses is None:
                sock = connect(host, port, timeout, literal)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
                responses = HttpResponses(sock)
                conn_no += 1
                connect_us = round(now_us() - t0, 1)
            else:
                connect_us = 0.0
            sock.sendall(request)
            status, body, will_close = responses.next()
            table.add(i, body.decode(errors="replace").strip(), status, connect_us, round(now_us() - t0, 1),
                      conn_no, None)
            if not keepalive or will_close:
                sock.close()
                sock = None
        except (OSError, http.client.HTTPException) as err:
            table.add(i, None, None, connect_us, round(now_us() - t0, 1), conn_no, f"{type(err).__name__}: {err}")
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()
    table.flush()


# -- dns: resolv.conf, a tiny wire encoder/decoder, the stub resolver's search ---------

@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2


def parse_resolv_conf(text: str) -> ResolvConf:
    """resolv.conf(5): the last ``search``/``domain`` line wins; options may repeat."""
    conf = ResolvConf()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not line:
            continue
        key, args = line[0], line[1:]
        if key == "nameserver" and args:
            conf.nameservers.append(args[0])
        elif key in ("search", "domain"):
            conf.search = [d.rstrip(".") for d in args]
        elif key == "options":
            for opt in args:
                name, _, value = opt.partition(":")
                try:
                    if name == "ndots":
                        conf.ndots = min(int(value), 15)  # glibc caps ndots at 15
                    elif name == "timeout":
                        conf.timeout = float(value)
                    elif name == "attempts":
                        conf.attempts = int(value)
                except ValueError:
                    pass
    if not conf.nameservers:
        conf.nameservers = ["127.0.0.1"]
    return conf


def cluster_domain(conf: ResolvConf) -> str | None:
    """Kubernetes puts ``<ns>.svc.<domain>``, ``svc.<domain>``, ``<domain>`` in the search list."""
    for domain in conf.search:
        if domain.startswith("svc."):
            return domain[4:]
    return None


def search_candidates(name: str, conf: ResolvConf) -> list[str]:
    """The absolute names a glibc stub resolver tries, in order, for ``name``."""
    if name.endswith("."):
        return [name]
    expanded = [f"{name}.{domain}." for domain in conf.search]
    if name.count(".") >= conf.ndots:
        return [name + "."] + expanded
    return expanded + [name + "."]


QTYPE = {"A": 1, "CNAME": 5, "AAAA": 28, "SRV": 33}
RCODE = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_query(qid: int, name: str, qtype: int = 1) -> bytes:
    """A standard query with RD set; one question of class IN."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split(".") if p)
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def _read_name(msg: bytes, offset: int) -> tuple[str, int]:
    """A possibly compressed name; returns it and the offset just after it."""
    labels: list[str] = []
    end = None
    for _ in range(128):  # bounds pointer loops in malformed messages
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            continue
        offset += 1
        if length == 0:
            return ".".join(labels) + ".", end if end is not None else offset
        labels.append(msg[offset:offset + length].decode("ascii", errors="replace"))
        offset += length
    raise ValueError("name compression loop")


@dataclass
class Reply:
    qid: int
    rcode: str
    truncated: bool
    answers: list[tuple[str, str, str]]  # (name, type, data)


def decode_reply(msg: bytes) -> Reply:
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    offset = 12
    for _ in range(qd):
        _, offset = _read_name(msg, offset)
        offset += 4
    answers = []
    for _ in range(an):
        name, offset = _read_name(msg, offset)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[offset:offset + 10])
        offset += 10
        rdata = msg[offset:offset + rdlen]
        if rtype == 1 and rdlen == 4:
            answers.append((name, "A", socket.inet_ntop(socket.AF_INET, rdata)))
        elif rtype == 28 and rdlen == 16:
            answers.append((name, "AAAA", socket.inet_ntop(socket.AF_INET6, rdata)))
        elif rtype == 5:
            answers.append((name, "CNAME", _read_name(msg, offset)[0]))
        offset += rdlen
    return Reply(qid, RCODE.get(flags & 0xF, str(flags & 0xF)), bool(flags & 0x0200), answers)


def udp_query(server: str, name: str, timeout: float, qtype: int = 1) -> tuple[Reply | None, float]:
    """One query over UDP; returns the reply (None on timeout) and its round trip in µs."""
    qid = random.randrange(65536)
    with socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((server, 53))
        t0 = now_us()
        s.send(encode_query(qid, name, qtype))
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = s.recv(4096)
            except TimeoutError:
                return None, now_us() - t0
            reply = decode_reply(data)
            if reply.qid == qid:  # a late reply to an earlier query is not ours
                return reply, now_us() - t0
            s.settimeout(max(deadline - time.monotonic(), 0.001))


def query_pair(server: str, name: str, timeout: float) -> list[tuple[str, Reply | None, float]]:
    """An A and an AAAA query for one name, sent at the same time from two sockets,
    as glibc's getaddrinfo(AF_UNSPEC) does (musl also sends both at once); returns
    (type, reply, round trip in µs) for each, A first."""
    results: dict[str, tuple[Reply | None, float]] = {}

    def ask(qtype: str) -> None:
        results[qtype] = udp_query(server, name, timeout, QTYPE[qtype])

    aaaa = threading.Thread(target=ask, args=("AAAA",))
    aaaa.start()
    ask("A")
    aaaa.join()
    return [(qtype, *results[qtype]) for qtype in ("A", "AAAA")]


def lookup(name: str, conf: ResolvConf, timeout: float) -> dict[str, object]:
    """The stub resolver's walk over the search list like getaddrinfo with AF_UNSPEC:
    for each candidate an A and an AAAA query in parallel, so two queries per name
    tried; it stops at the first candidate that has an address of either family
    (glibc goes on after NXDOMAIN, NODATA and SERVFAIL)."""
    queries = []
    t0 = now_us()
    answer: list[str] = []
    rcode = "TIMEOUT"
    for candidate in search_candidates(name, conf):
        pair = query_pair(conf.nameservers[0], candidate, timeout)
        for qtype, reply, rtt in pair:
            queries.append({"name": candidate, "type": qtype, "rcode": reply.rcode if reply else "TIMEOUT",
                            "us": round(rtt, 1)})
        addresses = [data for _, reply, _ in pair if reply and reply.rcode == "NOERROR"
                     for _, t, data in reply.answers if t in ("A", "AAAA")]
        a_reply = pair[0][1]
        rcode = a_reply.rcode if a_reply else "TIMEOUT"
        if addresses:
            answer = addresses
            break
    return {"latency_us": round(now_us() - t0, 1), "queries": len(queries), "rcode": rcode,
            "answer": answer, "trace": queries}


def getaddrinfo_us(name: str) -> tuple[float, str | None]:
    t0 = now_us()
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
        return now_us() - t0, str(infos[0][4][0])
    except socket.gaierror:
        return now_us() - t0, None


def name_forms(services: list[str], namespace: str, external: list[str], domain: str) -> list[tuple[str, str, str]]:
    """(service, form, name) for the forms a pod may use to reach a Service."""
    forms = []
    for svc in services:
        forms += [(svc, "short", svc), (svc, "name.namespace", f"{svc}.{namespace}"),
                  (svc, "fqdn", f"{svc}.{namespace}.svc.{domain}.")]
    forms += [(ext, "external", ext) for ext in external]
    return forms


def dns(services: list[str], namespace: str, external: list[str], samples: int, timeout: float, resolv: str) -> None:
    with open(resolv) as f:
        conf = parse_resolv_conf(f.read())
    domain = cluster_domain(conf) or "cluster.local"
    emit(kind="resolver", nameservers=conf.nameservers, search=conf.search, ndots=conf.ndots, domain=domain)
    forms = name_forms(services, namespace, external, domain)
    for sample in range(samples):
        for target, form, name in forms:
            result = lookup(name, conf, timeout)
            gai_us, gai_ip = getaddrinfo_us(name)
            emit(kind="lookup", sample=sample, target=target, form=form, name=name,
                 getaddrinfo_us=round(gai_us, 1), getaddrinfo_ip=gai_ip, **result)


# -- rtt / echo ----------------------------------------------------------------------

def rtt(host: str, port: int, count: int, size: int, timeout: float) -> None:
    payload = os.urandom(size)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        for i in range(count):
            t0 = now_us()
            s.send(payload)
            try:
                ok = s.recv(65536) == payload
            except TimeoutError:
                ok = False
            emit(proto="udp", i=i, rtt_us=round(now_us() - t0, 1), ok=ok)
    t0 = now_us()
    with socket.create_connection((host, port), timeout=timeout) as s:
        emit(proto="tcp-connect", i=0, rtt_us=round(now_us() - t0, 1), ok=True)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay on small writes
        for i in range(count):
            t0 = now_us()
            s.sendall(payload)
            got = b""
            while len(got) < size:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            emit(proto="tcp", i=i, rtt_us=round(now_us() - t0, 1), ok=got == payload)


class _UdpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


class _TcpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)


def echo(port: int) -> None:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    # not threading for UDP: a thread per datagram would add its start-up to every round trip
    udp = socketserver.UDPServer(("", port), _UdpEcho)
    tcp = socketserver.ThreadingTCPServer(("", port), _TcpEcho)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    emit(kind="echo", port=port)
    sys.stdout.flush()
    tcp.serve_forever()


# -- dial --------------------------------------------------------------------------------

def _get(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode(errors="replace")


def dial(host: str, port: int, via: str | None, via_port: int, tries: int, timeout: float) -> None:
    """Which source address the server saw: from this pod directly, and — with ``via`` —
    from another pod, by asking its netexec to dial the server (agnhost's /dial)."""
    for i in range(tries):
        try:
            with socket.create_connection((host, port), timeout=timeout) as s:
                own = s.getsockname()[0]
            seen = _get(f"http://{host}:{port}/clientip", timeout).rsplit(":", 1)[0]
            emit(path="direct", i=i, src_ip=own, seen_ip=seen, ok=True)
        except OSError as err:
            emit(path="direct", i=i, src_ip=None, seen_ip=None, ok=False, error=str(err))
    if via:
        query = urllib.parse.urlencode({"request": "clientip", "protocol": "http", "host": host,
                                        "port": port, "tries": tries})
        try:
            result = json.loads(_get(f"http://{via}:{via_port}/dial?{query}", timeout * tries))
        except (OSError, ValueError) as err:
            result = {"responses": [], "errors": [str(err)]}
        for i, response in enumerate(result.get("responses") or []):
            emit(path="via", i=i, src_ip=via, seen_ip=response.rsplit(":", 1)[0], ok=True)
        for i, error in enumerate(result.get("errors") or []):
            emit(path="via", i=i, src_ip=via, seen_ip=None, ok=False, error=error)


# -- env ---------------------------------------------------------------------------------

SERVICE_ENV_RE = re.compile(r"^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?"
                            r"|PORT_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)$")
DOCKER_LINK_RE = re.compile(r"^[A-Z0-9_]+_PORT$")


def is_service_env(name: str, value: str) -> bool:
    """The kubelet's Service variables (and their Docker-link style ``X_PORT=tcp://...``)."""
    if SERVICE_ENV_RE.match(name):
        return True
    return bool(DOCKER_LINK_RE.match(name)) and value.split("://", 1)[0] in ("tcp", "udp", "sctp")


def env() -> None:
    for name in sorted(os.environ):
        if is_service_env(name, os.environ[name]):
            emit(name=name, value=os.environ[name])


# -- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="probe.py")
    sub = p.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("lb")
    m.add_argument("--host", required=True)
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--path", default="/hostname")
    m.add_argument("--count", type=int, default=300)
    m.add_argument("--keepalive", action="store_true")
    m.add_argument("--timeout", type=float, default=5.0)
    m = sub.add_parser("dns")
    m.add_argument("--service", action="append", default=[])
    m.add_argument("--namespace", default="default")
    m.add_argument("--external", action="append", default=[])
    m.add_argument("--samples", type=int, default=20)
    m.add_argument("--timeout", type=float, default=2.0)
    m.add_argument("--resolv", default="/etc/resolv.conf")
    m = sub.add_parser("rtt")
    m.add_argument("--host", required=True)
    m.add_argument("--port", type=int, default=9000)
    m.add_argument("--count", type=int, default=200)
    m.add_argument("--size", type=int, default=32)
    m.add_argument("--timeout", type=float, default=2.0)
    m = sub.add_parser("echo")
    m.add_argument("--port", type=int, default=9000)
    m = sub.add_parser("dial")
    m.add_argument("--host", required=True)
    m.add_argument("--port", type=int, default=8080)
    m.add_argument("--via")
    m.add_argument("--via-port", type=int, default=8080)
    m.add_argument("--tries", type=int, default=3)
    m.add_argument("--timeout", type=float, default=5.0)
    sub.add_parser("env")
    a = p.parse_args(argv)
    t0 = time.monotonic()
    if a.mode == "lb":
        lb(a.host, a.port, a.path, a.count, a.keepalive, a.timeout)
    elif a.mode == "dns":
        dns(a.service, a.namespace, a.external, a.samples, a.timeout, a.resolv)
    elif a.mode == "rtt":
        rtt(a.host, a.port, a.count, a.size, a.timeout)
    elif a.mode == "echo":
        echo(a.port)
    elif a.mode == "dial":
        dial(a.host, a.port, a.via, a.via_port, a.tries, a.timeout)
    elif a.mode == "env":
        env()
    emit(done=a.mode, seconds=round(time.monotonic() - t0, 3))


if __name__ == "__main__":
    main()
