"""The DNS server on 127.0.0.1:<free port>, queried with dnspython over UDP and TCP."""

from __future__ import annotations

import asyncio
import socket
import statistics
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Iterator

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import pytest

from k8snet.lab.dns import DnsServer
from k8snet.lab.dns.health import HealthServer
from tests.unit._dns_fixtures import cluster_records

NGINX = "my-nginx.default.svc.cluster.local."


class Running:
    """A DnsServer (and its health endpoint) on an event loop in a background thread,
    so the tests can use dnspython's blocking clients as a resolver would."""

    def __init__(self, synced: bool = True):
        self.records = cluster_records(synced=synced)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.dns = DnsServer(self.records, "127.0.0.1", 0)
        self.health = HealthServer(lambda: self.records.synced, "127.0.0.1", 0)
        self._call(self.dns.start())
        self._call(self.health.start())

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self._call(self.dns.close())
        self._call(self.health.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture()
def server() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()


def udp(server: Running, name: str, rdtype: int = T.A, **kw) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype, **kw), "127.0.0.1", port=server.dns.port, timeout=2)


def tcp(server: Running, name: str, rdtype: int = T.A) -> dns.message.Message:
    return dns.query.tcp(dns.message.make_query(name, rdtype), "127.0.0.1", port=server.dns.port, timeout=2)


def raw_udp(server: Running, payload: bytes, timeout: float = 0.5) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", server.dns.port))
        try:
            return s.recv(65535)
        except TimeoutError:
            return None


def test_a_record_over_udp_and_tcp(server):
    for ask in (udp, tcp):
        r = ask(server, NGINX)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA
        assert r.answer[0].to_text() == f"{NGINX} 30 IN A 10.96.0.50"


def test_nxdomain_carries_the_soa(server):
    r = udp(server, "nope.default.svc.cluster.local.")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].rdtype == T.SOA and r.answer == []


def test_outside_names_are_refused(server):
    r = udp(server, "example.com.")
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA


def test_srv_with_additional_section(server):
    r = tcp(server, "_http._tcp.web.default.svc.cluster.local.", T.SRV)
    assert len(r.answer[0]) == 3
    # One A RRset per target name, so a client need not ask again.
    assert sorted(rr.name.to_text().split(".")[0] for rr in r.additional) == ["10-244-2-12", "web-0", "web-1"]


def test_oversized_udp_answer_is_truncated_and_complete_over_tcp(server):
    name = "big.default.svc.cluster.local."
    r = udp(server, name)  # no EDNS: 512 bytes; 100 A records need ~1.7 KB
    assert r.flags & dns.flags.TC and r.answer == []
    assert len(tcp(server, name).answer[0]) == 100
    r = udp(server, name, use_edns=0, payload=4096)  # EDNS: the client takes more
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 100


def test_tcp_connection_serves_several_queries(server):
    with socket.create_connection(("127.0.0.1", server.dns.port), timeout=2) as s:
        for qid in (1, 2, 3):
            q = dns.message.make_query(NGINX, T.A)
            q.id = qid
            wire = q.to_wire()
            s.sendall(struct.pack("!H", len(wire)) + wire)
            (length,) = struct.unpack("!H", s.recv(2, socket.MSG_WAITALL))
            r = dns.message.from_wire(s.recv(length, socket.MSG_WAITALL))
            assert r.id == qid and r.answer


def test_malformed_packets_never_stop_the_server(server):
    assert raw_udp(server, b"\x01\x02\x03") is None  # shorter than a header: dropped
    reply = raw_udp(server, b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07garbage")
    assert reply is not None
    r = dns.message.from_wire(reply)
    assert (r.id, r.rcode(), bool(r.flags & dns.flags.QR)) == (0xABCD, dns.rcode.FORMERR, True)
    response = dns.message.make_response(dns.message.make_query(NGINX, T.A))
    assert raw_udp(server, response.to_wire()) is None  # a response is never answered
    assert udp(server, NGINX).answer  # still serving


def test_two_questions_are_formerr_and_other_opcodes_notimp(server):
    q = dns.message.make_query(NGINX, T.A)
    q.find_rrset(q.question, dns.name.from_text("web.default.svc.cluster.local."), dns.rdataclass.IN, T.A,
                 create=True)
    assert dns.message.from_wire(raw_udp(server, q.to_wire())).rcode() == dns.rcode.FORMERR
    q = dns.message.make_query(NGINX, T.A)
    q.set_opcode(dns.opcode.NOTIFY)
    assert dns.message.from_wire(raw_udp(server, q.to_wire())).rcode() == dns.rcode.NOTIMP


def test_health_and_readiness():
    running = Running(synced=False)
    try:
        base = f"http://127.0.0.1:{running.health.port}"
        assert urllib.request.urlopen(f"{base}/health", timeout=2).read() == b"OK"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/ready", timeout=2)
        assert err.value.code == 503
        assert udp(running, "nope.default.svc.cluster.local.").rcode() == dns.rcode.SERVFAIL
        running.records.mark_synced()
        assert urllib.request.urlopen(f"{base}/ready", timeout=2).status == 200
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/metrics", timeout=2)
        assert err.value.code == 404
    finally:
        running.close()


def test_udp_latency_on_loopback(server):
    """Median over 1000 sequential queries; the figure goes in the report, the bound
    only catches a server that became pathologically slow."""
    q = dns.message.make_query(NGINX, T.A)
    times = []
    for _ in range(1000):
        start = time.perf_counter()
        dns.query.udp(q, "127.0.0.1", port=server.dns.port, timeout=2)
        times.append(time.perf_counter() - start)
    median_ms = statistics.median(times) * 1000
    print(f"median UDP query latency {median_ms:.3f} ms, p99 {sorted(times)[989] * 1000:.3f} ms")
    assert median_ms < 20
