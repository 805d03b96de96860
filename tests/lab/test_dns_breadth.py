"""The Kubernetes DNS spec, asked from inside a pod of the lab (through the kube-dns
Service, like any workload): hostname/subdomain records of a headless Service, SRV
for every named port and protocol, PTR for Service and pod IPs, pod A records,
ExternalName CNAMEs, NODATA vs NXDOMAIN, truncation with TCP fallback, and a repeated
question answered anew as soon as the records change.

The client pod runs the python image, whose container sees the host's ``dig`` and
dnspython, so the queries are real resolver traffic from a pod's network namespace.
"""

from __future__ import annotations

import json
import re
import string

import pytest

from k8snet.lab.polling import wait_until

MANY = 16  # ready pods behind one headless Service: their SRV answer exceeds 512 bytes

# a Template: the manifest's YAML flow mappings are full of braces
MANIFEST = string.Template("""
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {name: metrics, port: 9100, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 8080, targetPort: 80, protocol: TCP}
  - {name: syslog, port: 514, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  type: ExternalName
  externalName: db.example.com
---
apiVersion: v1
kind: Service
metadata: {name: many}
spec:
  clusterIP: None
  selector: {app: many}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: many}
spec:
  replicas: $many
  selector: {matchLabels: {app: many}}
  template:
    metadata: {labels: {app: many}}
    spec:
      containers: [{name: pause, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: client, image: "python:3.12", command: [sleep, "3600"]}]
""").substitute(many=MANY)

WEB_POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: web}}
spec:
  hostname: %(name)s
  subdomain: web
  containers: [{name: web, image: busybox, command: [sleep, "3600"]}]
"""

# dnspython in the client pod: one UDP query without EDNS (512-byte limit), one over TCP.
TRUNCATION = """
import json, sys, dns.flags, dns.message, dns.query
q = dns.message.make_query(sys.argv[1], "SRV")
udp = dns.query.udp(q, "10.96.0.10", timeout=5)  # returns the truncated answer as it came
tcp = dns.query.tcp(q, "10.96.0.10", timeout=5)
print(json.dumps({"tc": bool(udp.flags & dns.flags.TC), "udp": sum(len(r) for r in udp.answer),
                  "tcp": sum(len(r) for r in tcp.answer), "tcp_tc": bool(tcp.flags & dns.flags.TC)}))
"""

# The same question bytes every time (dnspython adds no EDNS or cookie unless asked), as a
# stub resolver repeats a lookup: the DNS pod answers repeats from replies it stored.
ASK_A = """
import sys, dns.message, dns.query, dns.rcode
r = dns.query.udp(dns.message.make_query(sys.argv[1], "A"), "10.96.0.10", timeout=5)
print(dns.rcode.to_text(r.rcode()), *sorted(rd.address for rr in r.answer for rd in rr))
"""


@pytest.fixture()
def cluster(kubectl, namespace):
    """The Services and pods above, everything ready, and a `dig` in the client pod."""
    kubectl("apply", "-f", "-", input=MANIFEST)
    for name in ("web-0", "web-1"):
        kubectl("apply", "-f", "-", input=WEB_POD % {"name": name})
    kubectl("wait", "--for=condition=Ready", "pod/client", "pod/web-0", "pod/web-1", "--timeout=90s")
    kubectl("rollout", "status", "deployment/many", "--timeout=120s")

    def dig(*args: str) -> str:
        return kubectl("exec", "client", "--", "dig", "+time=3", "+tries=2", *args, check=False)

    def short(*args: str) -> list[str]:
        return sorted(dig("+short", *args).split("\n")[:-1]) if dig("+short", *args).strip() else []

    fqdn = f"web-0.web.{namespace}.svc.cluster.local"
    # the DNS pod follows the API: wait until it has the newest records
    wait_until("DNS to know the pods", lambda: short(fqdn) and len(short(f"many.{namespace}.svc.cluster.local")) == MANY,
               60)
    return dig, short


def _pod_ip(kubectl, name: str) -> str:
    return kubectl("get", "pod", name, "-o", "jsonpath={.status.podIP}")


def test_endpoints_carry_the_hostname_of_pods_in_the_subdomain(kubectl, cluster):
    slices = json.loads(kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json"))
    hostnames = {ep["addresses"][0]: ep.get("hostname") for s in slices["items"] for ep in s["endpoints"]}
    assert hostnames == {_pod_ip(kubectl, "web-0"): "web-0", _pod_ip(kubectl, "web-1"): "web-1"}
    endpoints = json.loads(kubectl("get", "endpoints", "web", "-o", "json", stderr=False))
    addresses = {a["ip"]: a.get("hostname") for s in endpoints["subsets"] for a in s["addresses"]}
    assert addresses == hostnames
    # the api Service selects the same pods but is not their subdomain: no hostname there
    slices = json.loads(kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=api", "-o", "json"))
    assert all("hostname" not in ep for s in slices["items"] for ep in s["endpoints"])


def test_hostname_subdomain_resolves_and_is_in_the_pods_own_hosts_file(kubectl, namespace, cluster):
    dig, short = cluster
    fqdn = f"web-0.web.{namespace}.svc.cluster.local"
    ip = _pod_ip(kubectl, "web-0")
    assert short(fqdn) == [ip]
    assert short(f"web.{namespace}.svc.cluster.local") == sorted([ip, _pod_ip(kubectl, "web-1")])
    out = kubectl("exec", "client", "--", "getent", "hosts", f"web-1.web.{namespace}.svc.cluster.local")
    assert out.split()[0] == _pod_ip(kubectl, "web-1"), out
    hosts = kubectl("exec", "web-0", "--", "cat", "/etc/hosts")
    assert re.search(rf"^{re.escape(ip)}\t{re.escape(fqdn)}\tweb-0$", hosts, re.M), hosts
    assert kubectl("exec", "web-0", "--", "hostname").strip() == "web-0"


def test_srv_for_every_named_port_and_protocol(kubectl, namespace, cluster):
    dig, short = cluster
    zone = f"{namespace}.svc.cluster.local"
    assert short("SRV", f"_http._tcp.api.{zone}") == [f"0 100 8080 api.{zone}."]
    assert short("SRV", f"_syslog._udp.api.{zone}") == [f"0 100 514 api.{zone}."]
    # headless: one record per ready endpoint, named by its hostname
    assert short("SRV", f"_http._tcp.web.{zone}") == [f"0 50 80 web-0.web.{zone}.", f"0 50 80 web-1.web.{zone}."]
    assert short("SRV", f"_metrics._udp.web.{zone}") == [f"0 50 9100 web-0.web.{zone}.",
                                                       f"0 50 9100 web-1.web.{zone}."]
    # the wrong protocol for a port name has no records
    assert "status: NXDOMAIN" in dig("SRV", f"_http._udp.api.{zone}")


def test_ptr_for_service_and_pod_ips(kubectl, namespace, cluster):
    dig, short = cluster
    cluster_ip = kubectl("get", "svc", "api", "-o", "jsonpath={.spec.clusterIP}")
    assert short("-x", cluster_ip) == [f"api.{namespace}.svc.cluster.local."]
    # like CoreDNS, an endpoint IP has a name under every Service it backs: its hostname
    # under the headless subdomain, the dashed IP under the others
    ip = _pod_ip(kubectl, "web-0")
    assert short("-x", ip) == sorted([f"web-0.web.{namespace}.svc.cluster.local.",
                                      f"{ip.replace('.', '-')}.api.{namespace}.svc.cluster.local."])


def test_pod_a_record(kubectl, namespace, cluster):
    dig, short = cluster
    ip = _pod_ip(kubectl, "client")
    assert short(f"{ip.replace('.', '-')}.{namespace}.pod.cluster.local") == [ip]


def test_external_name_is_a_cname(namespace, cluster):
    dig, short = cluster
    out = dig("CNAME", f"db.{namespace}.svc.cluster.local")
    assert re.search(rf"^db\.{namespace}\.svc\.cluster\.local\.\s+\d+\s+IN\s+CNAME\s+db\.example\.com\.$", out, re.M), out


def test_nodata_is_not_nxdomain(kubectl, namespace, cluster):
    dig, short = cluster
    nodata = dig("AAAA", f"api.{namespace}.svc.cluster.local")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata, nodata
    assert re.search(r"AUTHORITY: 1\b", nodata) and "SOA" in nodata, nodata  # the negative-caching SOA
    missing = dig("A", f"nosuch.{namespace}.svc.cluster.local")
    assert "status: NXDOMAIN" in missing, missing
    # TTLs: 30 s, the `ttl 30` of kubeadm's and kind's Corefile
    answer = dig("A", f"api.{namespace}.svc.cluster.local")
    assert re.search(rf"^api\.{namespace}\.svc\.cluster\.local\.\s+30\s+IN\s+A\s", answer, re.M), answer


def test_a_question_asked_before_gets_the_changed_answer_at_once(kubectl, namespace, cluster):
    name = f"later.{namespace}.svc.cluster.local"

    def ask() -> str:
        return kubectl("exec", "client", "--", "python3", "-c", ASK_A, name).strip().splitlines()[-1]

    assert ask() == "NXDOMAIN"  # asked, and the reply stored, before the Service exists
    kubectl("create", "service", "clusterip", "later", "--tcp=80")
    ip = kubectl("get", "service", "later", "-o", "jsonpath={.spec.clusterIP}")
    wait_until("the new Service in DNS", lambda: ask() == f"NOERROR {ip}", 15)
    kubectl("delete", "service", "later")
    wait_until("the deleted Service gone from DNS", lambda: ask() == "NXDOMAIN", 15)


def test_large_answers_are_truncated_over_udp_and_complete_over_tcp(kubectl, namespace, cluster):
    dig, short = cluster
    name = f"_http._tcp.many.{namespace}.svc.cluster.local"
    out = kubectl("exec", "client", "--", "python3", "-c", TRUNCATION, name)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["tc"] and result["udp"] < MANY, result
    assert result["tcp"] == MANY and not result["tcp_tc"], result
    # dig (EDNS, as glibc and CoreDNS clients do) falls back to TCP by itself
    assert len(short("+noedns", "SRV", name)) == MANY
