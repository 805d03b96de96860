"""The probe's pure parts: resolv.conf, the stub resolver's search order, the DNS
wire encoder/decoder (cross-checked with dnspython), the JSON-lines contract."""

import json
import subprocess
import sys
import threading

import dns.message
import dns.rcode
import dns.rrset
import pytest

from k8snet.measure import parse_lines
from k8snet.probe import SCRIPT, probe

POD_RESOLV = """\
# written by the kubelet
search demo.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5 timeout:2 attempts:3
"""


def test_parse_resolv_conf_of_a_pod():
    conf = probe.parse_resolv_conf(POD_RESOLV)
    assert conf.nameservers == ["10.96.0.10"]
    assert conf.search == ["demo.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert (conf.ndots, conf.timeout, conf.attempts) == (5, 2.0, 3)
    assert probe.cluster_domain(conf) == "cluster.local"


def test_parse_resolv_conf_defaults_and_last_search_wins():
    conf = probe.parse_resolv_conf("domain a.example\nsearch b.example.  c.example ; comment\noptions ndots:99\n")
    assert conf.search == ["b.example", "c.example"]
    assert conf.ndots == 15  # glibc's cap
    assert conf.nameservers == ["127.0.0.1"]
    assert probe.cluster_domain(conf) is None


def test_search_candidates_follow_ndots():
    conf = probe.parse_resolv_conf(POD_RESOLV)
    assert probe.search_candidates("web", conf) == [
        "web.demo.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."]
    # 1 dot < ndots 5: an external name walks the whole search list first
    assert probe.search_candidates("example.com", conf)[-1] == "example.com."
    assert len(probe.search_candidates("example.com", conf)) == 4
    assert probe.search_candidates("web.demo.svc.cluster.local.", conf) == ["web.demo.svc.cluster.local."]
    conf.ndots = 1
    assert probe.search_candidates("example.com", conf)[0] == "example.com."


def test_encode_query_is_what_dnspython_reads():
    wire = probe.encode_query(0x1234, "web.demo.svc.cluster.local.")
    msg = dns.message.from_wire(wire)
    assert msg.id == 0x1234
    assert str(msg.question[0].name) == "web.demo.svc.cluster.local."
    assert msg.question[0].rdtype == 1 and msg.flags & dns.flags.RD


def test_decode_reply_with_compression_cname_and_a():
    query = dns.message.from_wire(probe.encode_query(7, "web.demo.svc.cluster.local"))
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("web.demo.svc.cluster.local.", 5, "IN", "CNAME", "real.demo.svc.cluster.local."))
    reply.answer.append(dns.rrset.from_text("real.demo.svc.cluster.local.", 5, "IN", "A", "10.96.0.42", "10.96.0.43"))
    decoded = probe.decode_reply(reply.to_wire())  # dnspython compresses the repeated suffix
    assert decoded.qid == 7 and decoded.rcode == "NOERROR" and not decoded.truncated
    assert decoded.answers[0] == ("web.demo.svc.cluster.local.", "CNAME", "real.demo.svc.cluster.local.")
    # an RRset is unordered on the wire
    assert sorted(decoded.answers[1:]) == [("real.demo.svc.cluster.local.", "A", "10.96.0.42"),
                                           ("real.demo.svc.cluster.local.", "A", "10.96.0.43")]


def test_decode_reply_nxdomain():
    query = dns.message.from_wire(probe.encode_query(9, "nope.cluster.local"))
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.NXDOMAIN)
    decoded = probe.decode_reply(reply.to_wire())
    assert decoded.rcode == "NXDOMAIN" and decoded.answers == []


def test_name_forms():
    forms = probe.name_forms(["web"], "demo", ["example.com"], "cluster.local")
    assert [f[1:] for f in forms] == [("short", "web"), ("name.namespace", "web.demo"),
                                      ("fqdn", "web.demo.svc.cluster.local."), ("external", "example.com")]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("WEB_SERVICE_HOST", "10.96.0.5", True), ("WEB_SERVICE_PORT_HTTP", "80", True),
    ("WEB_PORT", "tcp://10.96.0.5:80", True), ("WEB_PORT_80_TCP_ADDR", "10.96.0.5", True),
    ("APP_PORT", "8080", False), ("PATH", "/bin", False),
])
def test_is_service_env(name, value, expected):
    assert probe.is_service_env(name, value) is expected


def test_script_is_stdlib_only_and_prints_json_lines():
    # run it as the pod would: a bare interpreter, no k8snet on the path
    out = subprocess.run([sys.executable, "-I", str(SCRIPT), "env"], capture_output=True, text=True, timeout=30,
                         env={"WEB_SERVICE_HOST": "10.96.0.5", "PATH": "/usr/bin:/bin"}, check=True).stdout
    rows, done = parse_lines(out)
    assert done and rows == [{"name": "WEB_SERVICE_HOST", "value": "10.96.0.5"}]
    assert all(json.loads(line) for line in out.splitlines())


def test_parse_lines_ignores_noise_and_needs_done():
    rows, done = parse_lines('Starting\n{"a": 1}\n{broken\n{"b": 2}\n')
    assert rows == [{"a": 1}, {"b": 2}] and not done


class FakeServer:
    """Stands in for udp_query: the cluster DNS of POD_RESOLV, where only
    ``web.demo.svc.cluster.local.`` exists (an IPv4 Service: A answered, AAAA empty).
    Both queries of a pair must be in flight together (the barrier needs two waiters)."""

    def __init__(self):
        self.asked = []
        self.pair = threading.Barrier(2, timeout=5)

    def __call__(self, server, name, timeout, qtype=1):
        self.pair.wait()  # raises BrokenBarrierError when A and AAAA are sent one after the other
        self.asked.append((name, qtype))
        if name != "web.demo.svc.cluster.local.":
            return probe.Reply(1, "NXDOMAIN", False, []), 300.0
        answers = [(name, "A", "10.96.0.42")] if qtype == probe.QTYPE["A"] else []
        return probe.Reply(1, "NOERROR", False, answers), 200.0


@pytest.mark.parametrize(("name", "tried"), [
    ("web", 1),                               # first search domain answers
    ("web.demo", 2),                          # web.demo.demo.svc… first, then web.demo.svc…
    ("web.demo.svc.cluster.local.", 1),       # absolute: no search
    ("example.com", 4),                       # 1 dot < ndots 5: 3 search domains, then as is
])
def test_lookup_sends_a_and_aaaa_in_parallel_per_name_tried(monkeypatch, name, tried):
    fake = FakeServer()
    monkeypatch.setattr(probe, "udp_query", fake)
    result = probe.lookup(name, probe.parse_resolv_conf(POD_RESOLV), timeout=1.0)
    assert result["queries"] == 2 * tried == len(fake.asked)
    assert sorted(q for _, q in fake.asked) == sorted([1, 28] * tried)
    assert [(q["name"], q["type"]) for q in result["trace"]][::2] == \
        [(c, "A") for c in probe.search_candidates(name, probe.parse_resolv_conf(POD_RESOLV))[:tried]]
    assert {q["type"] for q in result["trace"]} == {"A", "AAAA"}
    if name.startswith("web"):
        assert result["answer"] == ["10.96.0.42"] and result["rcode"] == "NOERROR"
    else:
        assert result["answer"] == [] and result["rcode"] == "NXDOMAIN"


def test_query_pair_returns_a_then_aaaa(monkeypatch):
    monkeypatch.setattr(probe, "udp_query", FakeServer())
    pair = probe.query_pair("10.96.0.10", "web.demo.svc.cluster.local.", 1.0)
    assert [(t, r.answers) for t, r, _ in pair] == [
        ("A", [("web.demo.svc.cluster.local.", "A", "10.96.0.42")]), ("AAAA", [])]
