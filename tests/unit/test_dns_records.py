"""ClusterRecords against the Kubernetes DNS spec and CoreDNS's answers."""

from __future__ import annotations

import dns.rcode
import dns.rdatatype as T
import pytest

from k8snet.lab.dns import ENDPOINTSLICES, SERVICES, ClusterRecords
from k8snet.lab.dns.records import Answer
from tests.unit._dns_fixtures import HTTP, cluster_records, endpoint, endpoint_slice, service

Z = "cluster.local."


@pytest.fixture()
def records() -> ClusterRecords:
    return cluster_records()


def texts(answer: Answer, section: str = "answer") -> list[str]:
    return sorted(rr.to_text() for rrset in getattr(answer, section) for rr in rrset)


def assert_soa(answer: Answer, rcode: int) -> None:
    assert answer.rcode == rcode
    assert answer.answer == []
    (soa,) = answer.authority
    assert soa.name.to_text() == Z and soa.rdtype == T.SOA and soa.ttl == 30
    rd = soa[0]
    assert (rd.mname.to_text(), rd.rname.to_text()) == ("ns.dns.cluster.local.", "hostmaster.cluster.local.")
    assert (rd.refresh, rd.retry, rd.expire, rd.minimum) == (7200, 1800, 86400, 30)


def test_cluster_ip_service_a_record(records):
    a = records.resolve("my-nginx.default.svc.cluster.local.", T.A)
    assert a.rcode == dns.rcode.NOERROR and a.authoritative
    (rrset,) = a.answer
    assert rrset.to_text() == "my-nginx.default.svc.cluster.local. 30 IN A 10.96.0.50"


def test_names_are_case_insensitive_and_answer_in_the_question_case(records):
    a = records.resolve("My-Nginx.DEFAULT.svc.Cluster.Local.", T.A)
    assert texts(a) == ["10.96.0.50"]
    assert a.answer[0].name.to_text() == "My-Nginx.DEFAULT.svc.Cluster.Local."


def test_aaaa_for_an_ipv4_only_name_is_nodata(records):
    assert_soa(records.resolve("my-nginx.default.svc.cluster.local.", T.AAAA), dns.rcode.NOERROR)


def test_unknown_names_are_nxdomain_with_the_soa(records):
    for name in ("nope.default.svc.cluster.local.", "my-nginx.other.svc.cluster.local.",
                 "foo.cluster.local.", "a.b.c.d.my-nginx.default.svc.cluster.local."):
        assert_soa(records.resolve(name, T.A), dns.rcode.NXDOMAIN)


def test_empty_non_terminals_are_nodata_not_nxdomain(records):
    for name in ("svc.cluster.local.", "default.svc.cluster.local.", "anything.svc.cluster.local.",
                 "pod.cluster.local.", "default.pod.cluster.local.", "cluster.local."):
        assert_soa(records.resolve(name, T.A), dns.rcode.NOERROR)


def test_names_outside_the_cluster_domain_are_refused_not_forwarded(records):
    a = records.resolve("example.com.", T.A)
    assert (a.rcode, a.answer, a.authority, a.authoritative) == (dns.rcode.REFUSED, [], [], False)
    assert records.resolve("local.", T.A).rcode == dns.rcode.REFUSED  # a parent of the zone is not ours


def test_outside_rcode_is_configurable():
    assert cluster_records(outside_rcode=dns.rcode.NXDOMAIN).resolve("example.com.", T.A).rcode == dns.rcode.NXDOMAIN


def test_srv_for_a_named_port_targets_the_service(records):
    a = records.resolve("_http._tcp.my-nginx.default.svc.cluster.local.", T.SRV)
    assert texts(a) == ["0 100 80 my-nginx.default.svc.cluster.local."]
    assert texts(a, "additional") == ["10.96.0.50"]
    assert texts(records.resolve("_https._tcp.kubernetes.default.svc.cluster.local.", T.SRV)) == \
        ["0 100 443 kubernetes.default.svc.cluster.local."]


def test_srv_protocol_must_match(records):
    assert texts(records.resolve("_dns._udp.kube-dns.kube-system.svc.cluster.local.", T.SRV)) == \
        ["0 100 53 kube-dns.kube-system.svc.cluster.local."]
    assert records.resolve("_dns._tcp.kube-dns.kube-system.svc.cluster.local.", T.SRV).rcode == dns.rcode.NXDOMAIN
    assert records.resolve("_http._udp.my-nginx.default.svc.cluster.local.", T.SRV).rcode == dns.rcode.NXDOMAIN


def test_unnamed_ports_have_no_port_srv_but_the_bare_name_lists_them(records):
    assert records.resolve("_._tcp.unnamed.default.svc.cluster.local.", T.SRV).rcode == dns.rcode.NXDOMAIN
    assert texts(records.resolve("unnamed.default.svc.cluster.local.", T.SRV)) == \
        ["0 100 8080 unnamed.default.svc.cluster.local."]


def test_ptr_for_a_cluster_ip(records):
    a = records.resolve("50.0.96.10.in-addr.arpa.", T.PTR)
    assert a.answer[0].to_text() == "50.0.96.10.in-addr.arpa. 30 IN PTR my-nginx.default.svc.cluster.local."


def test_headless_service_answers_every_ready_endpoint(records):
    a = records.resolve("web.default.svc.cluster.local.", T.A)
    assert texts(a) == ["10.244.1.10", "10.244.2.11", "10.244.2.12"]  # not the unready 10.244.1.13


def test_headless_endpoint_hostnames(records):
    assert texts(records.resolve("web-0.web.default.svc.cluster.local.", T.A)) == ["10.244.1.10"]
    # Without a hostname the endpoint is named by its address, as CoreDNS does.
    assert texts(records.resolve("10-244-2-12.web.default.svc.cluster.local.", T.A)) == ["10.244.2.12"]
    assert records.resolve("web-3.web.default.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN


def test_headless_srv_has_one_record_per_ready_endpoint_and_port(records):
    a = records.resolve("_http._tcp.web.default.svc.cluster.local.", T.SRV)
    assert texts(a) == ["0 33 8080 10-244-2-12.web.default.svc.cluster.local.",
                        "0 33 8080 web-0.web.default.svc.cluster.local.",
                        "0 33 8080 web-1.web.default.svc.cluster.local."]
    assert texts(a, "additional") == ["10.244.1.10", "10.244.2.11", "10.244.2.12"]


def test_headless_endpoint_ptr(records):
    a = records.resolve("10.1.244.10.in-addr.arpa.", T.PTR)
    assert texts(a) == ["web-0.web.default.svc.cluster.local."]


def test_unknown_reverse_names_are_nxdomain_in_their_zone(records):
    a = records.resolve("9.9.9.9.in-addr.arpa.", T.PTR)
    assert a.rcode == dns.rcode.NXDOMAIN and a.authority[0].name.to_text() == "in-addr.arpa."


def test_headless_without_ready_endpoints_is_nxdomain(records):
    assert_soa(records.resolve("empty-headless.default.svc.cluster.local.", T.A), dns.rcode.NXDOMAIN)


def test_pod_records_insecure_mode(records):
    a = records.resolve("10-244-1-5.default.pod.cluster.local.", T.A)
    assert a.answer[0].to_text() == "10-244-1-5.default.pod.cluster.local. 30 IN A 10.244.1.5"
    assert texts(records.resolve("fd00--5.default.pod.cluster.local.", T.AAAA)) == ["fd00::5"]
    assert records.resolve("not-an-ip.default.pod.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    assert_soa(records.resolve("10-244-1-5.default.pod.cluster.local.", T.AAAA), dns.rcode.NOERROR)


def test_external_name_is_a_cname_not_chased_outside(records):
    a = records.resolve("my-db.prod.svc.cluster.local.", T.A)
    assert a.rcode == dns.rcode.NOERROR
    assert [r.to_text() for r in a.answer] == ["my-db.prod.svc.cluster.local. 30 IN CNAME db.example.com."]


def test_external_name_inside_the_zone_is_chased(records):
    a = records.resolve("alias.default.svc.cluster.local.", T.A)
    assert [r.to_text() for r in a.answer] == [
        "alias.default.svc.cluster.local. 30 IN CNAME my-nginx.default.svc.cluster.local.",
        "my-nginx.default.svc.cluster.local. 30 IN A 10.96.0.50"]


def test_dns_version_apex_and_nameserver(records):
    assert texts(records.resolve("dns-version.cluster.local.", T.TXT)) == ['"1.1.0"']
    assert records.resolve("cluster.local.", T.SOA).answer[0].rdtype == T.SOA
    ns = records.resolve("cluster.local.", T.NS)
    assert texts(ns) == ["ns.dns.cluster.local."] and texts(ns, "additional") == ["10.96.0.10"]
    assert texts(records.resolve("ns.dns.cluster.local.", T.A)) == ["10.96.0.10"]


def test_watch_events_add_change_and_remove_records():
    records = ClusterRecords()
    svc = service("api", "team", "10.96.7.7", HTTP)
    records.update(SERVICES, "ADDED", svc)
    assert texts(records.resolve("api.team.svc.cluster.local.", T.A)) == ["10.96.7.7"]
    records.update(SERVICES, "MODIFIED", service("api", "team", "None", HTTP))
    records.update(ENDPOINTSLICES, "ADDED", endpoint_slice("api", "team", "q", [{"name": "http", "port": 80}],
                                                          [endpoint("10.244.9.9")]))
    assert texts(records.resolve("api.team.svc.cluster.local.", T.A)) == ["10.244.9.9"]
    records.update(SERVICES, "BOOKMARK", {"metadata": {"resourceVersion": "7"}})
    records.update(SERVICES, "DELETED", svc)
    assert records.resolve("api.team.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    assert records.resolve("9.9.244.10.in-addr.arpa.", T.PTR).rcode == dns.rcode.NXDOMAIN


def test_publish_not_ready_addresses_serves_unready_endpoints():
    records = ClusterRecords()
    records.replace(SERVICES, [service("db", "default", "None", HTTP, publishNotReadyAddresses=True)])
    records.replace(ENDPOINTSLICES, [endpoint_slice("db", "default", "a", [{"name": "http", "port": 80}],
                                                    [endpoint("10.244.1.3", ready=False)])])
    assert texts(records.resolve("db.default.svc.cluster.local.", T.A)) == ["10.244.1.3"]


def test_dual_stack_service():
    records = ClusterRecords()
    svc = service("dual", "default", "10.96.0.77", HTTP)
    svc["spec"]["clusterIPs"] = ["10.96.0.77", "fd00:10:96::77"]
    records.replace(SERVICES, [svc])
    assert texts(records.resolve("dual.default.svc.cluster.local.", T.AAAA)) == ["fd00:10:96::77"]
    assert texts(records.resolve("7.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", T.PTR)) == \
        ["dual.default.svc.cluster.local."]


def test_before_the_first_sync_unknown_names_are_servfail_not_nxdomain():
    records = ClusterRecords(synced=False)
    a = records.resolve("my-nginx.default.svc.cluster.local.", T.A)
    assert a.rcode == dns.rcode.SERVFAIL  # a resolver must not cache "does not exist" yet
    records.mark_synced()
    assert records.resolve("my-nginx.default.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError):
        ClusterRecords().update("pods", "ADDED", {})


def test_a_malformed_object_does_not_hide_the_others():
    records = cluster_records()
    broken = service("broken", "default", "10.96.0.99", [{"name": "http", "port": "eighty"}])
    records.update(SERVICES, "ADDED", broken)
    assert texts(records.resolve("my-nginx.default.svc.cluster.local.", T.A)) == ["10.96.0.50"]
