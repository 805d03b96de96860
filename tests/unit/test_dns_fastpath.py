"""The UDP fast path answers exactly what answer_wire would, and never an answer the
records no longer give: stored replies are checked byte for byte against a fresh
answer_wire, and against records changed after the reply was stored."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype as T

from k8snet.lab.dns import SERVICES, answer_wire
from k8snet.lab.dns.fastpath import VARIANTS, ReplyCache, UdpLoop
from tests.unit._dns_fixtures import SERVICE_OBJECTS, cluster_records, service

NGINX = "my-nginx.default.svc.cluster.local."


def query(name: str, rdtype: int = T.A, qid: int = 1, **kw) -> bytes:
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = qid
    return q.to_wire()


def sections(reply: bytes) -> tuple:
    """A reply with each section's records as a set: their order is shuffled on purpose."""
    m = dns.message.from_wire(reply)
    return (m.id, m.flags, m.rcode(), tuple(q.to_text() for q in m.question),
            *(frozenset((rr.name, rr.rdtype, rd) for rr in section for rd in rr) for section in m.sections[1:]))


def test_a_repeat_is_the_same_reply_with_the_new_id():
    records = cluster_records()
    cache = ReplyCache(records)
    for wire in (query(NGINX), query("big.default.svc.cluster.local."),  # truncated, TC set
                 query("nope.default.svc.cluster.local."), query("example.com."),
                 query("10-244-1-5.default.pod.cluster.local.", use_edns=0, payload=1232),
                 query("alias.default.svc.cluster.local.")):  # CNAME and A: two records, one order
        first = cache.answer(wire)
        for qid in (0x1234, 0x4321):
            assert cache.answer(qid.to_bytes(2, "big") + wire[2:]) == qid.to_bytes(2, "big") + first[2:]
        assert first == answer_wire(records, wire, udp=True)
    garbage = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07garbage"
    assert dns.message.from_wire(b"\xab\xcd" + cache.answer(garbage)[2:]).rcode() == dns.rcode.FORMERR


def test_multi_record_replies_keep_varying_their_order():
    records = cluster_records()
    cache = ReplyCache(records)
    # Each of 3 endpoints comes first in some reply; of 100, most do within 3 x VARIANTS replies.
    for name, rdtype, distinct_firsts in (("web.default.svc.cluster.local.", T.A, 3),
                                          ("_http._tcp.web.default.svc.cluster.local.", T.SRV, 3),
                                          ("big.default.svc.cluster.local.", T.A, 30)):
        wire = query(name, rdtype, use_edns=0, payload=4096)
        replies = [cache.answer(wire) for _ in range(3 * VARIANTS)]
        assert {sections(r) for r in replies} == {sections(answer_wire(records, wire, udp=True))}
        firsts = {dns.message.from_wire(r).answer[0][0].to_text() for r in replies}
        assert len(firsts) >= distinct_firsts, firsts


def test_the_question_keeps_the_clients_letter_case():
    cache = ReplyCache(cluster_records())
    cache.answer(query(NGINX))
    reply = dns.message.from_wire(cache.answer(query("My-NGINX.default.svc.Cluster.Local.", qid=7)))
    assert reply.id == 7
    assert reply.question[0].name.to_text() == "My-NGINX.default.svc.Cluster.Local."
    assert reply.answer[0].name.to_text() == "My-NGINX.default.svc.Cluster.Local."


def test_a_records_change_is_answered_at_once():
    records = cluster_records()
    cache = ReplyCache(records)
    assert dns.message.from_wire(cache.answer(query(NGINX))).answer[0][0].address == "10.96.0.50"
    records.update(SERVICES, "MODIFIED", service("my-nginx", "default", "10.96.0.77", [{"port": 80}]))
    assert dns.message.from_wire(cache.answer(query(NGINX))).answer[0][0].address == "10.96.0.77"
    records.update(SERVICES, "DELETED", SERVICE_OBJECTS[2])
    assert dns.message.from_wire(cache.answer(query(NGINX))).rcode() == dns.rcode.NXDOMAIN


def test_servfail_before_the_first_sync_is_not_kept():
    records = cluster_records(synced=False)
    cache = ReplyCache(records)
    wire = query("nope.default.svc.cluster.local.")
    assert dns.message.from_wire(cache.answer(wire)).rcode() == dns.rcode.SERVFAIL
    records.mark_synced()
    assert dns.message.from_wire(cache.answer(wire)).rcode() == dns.rcode.NXDOMAIN


def test_the_store_is_bounded():
    cache = ReplyCache(cluster_records(), max_bytes=1000)
    for i in range(50):
        assert cache.answer(query(f"10-244-0-{i}.default.pod.cluster.local."))
        assert sum(len(k) + len(v) for k, v in cache._table[1].items()) <= 1000 + 200


def test_the_loop_serves_survives_garbage_and_stops_on_close():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    loop = UdpLoop(sock, ReplyCache(cluster_records()))
    loop.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(2)
        client.sendto(b"\x01", sock.getsockname())  # too short: dropped, loop goes on
        client.sendto(query(NGINX, qid=9), sock.getsockname())
        reply = dns.message.from_wire(client.recv(65535))
    assert reply.id == 9 and reply.flags & dns.flags.AA and reply.answer
    loop.close()
    assert not any(t.name == "dns-udp" for t in threading.enumerate())
