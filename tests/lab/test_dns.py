"""Cluster DNS as real resolvers use it: busybox nslookup, glibc (getent) and dig.

The first group runs the DNS server on 127.0.0.1:53 inside a throwaway network
namespace (``k8snet-tdns<pid>``), with a pod-like resolv.conf bind-mounted in a
private mount namespace, so nothing on the host changes; the namespace and the
server are removed even when a test fails. The last test asks the lab's own
coredns pod, from a busybox pod, as the tutorial does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
RESOLV_CONF = ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
               "nameserver 127.0.0.1\noptions ndots:5\n")
# The records the unit tests use, served the way the pod serves them (port 53, UDP + TCP).
SERVE = """
import asyncio
from k8snet.lab.dns import DnsServer
from tests.unit._dns_fixtures import cluster_records

async def main():
    async with DnsServer(cluster_records(), "127.0.0.1", 53):
        print("serving", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""

Run = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def in_netns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    netns = f"k8snet-tdns{os.getpid() % 100000}"
    resolv = tmp_path_factory.mktemp("dns") / "resolv.conf"
    resolv.write_text(RESOLV_CONF)
    server = None
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        # `ip netns exec` execs the command, so the Popen pid is the server's own.
        server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", SERVE], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "serving"

        def run(*cmd: str) -> subprocess.CompletedProcess:
            wrapped = ["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
                       "sh", "-c", f'mount --bind {resolv} /etc/resolv.conf && exec "$@"', "sh", *cmd]
            return subprocess.run(wrapped, capture_output=True, text=True, timeout=30)

        yield run
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        subprocess.run(["ip", "netns", "del", netns], check=False)


def test_busybox_nslookup_short_name_through_the_search_path(in_netns):
    out = in_netns("busybox", "nslookup", "my-nginx").stdout
    # busybox >= 1.29 output, as in a pod of a real cluster.
    assert re.search(r"Name:\s+my-nginx\.default\.svc\.cluster\.local\nAddress: 10\.96\.0\.50\n", out), out


def test_busybox_nslookup_fqdn_ptr_and_srv(in_netns):
    out = in_netns("busybox", "nslookup", "web.default.svc.cluster.local").stdout
    assert sorted(re.findall(r"Address: (10\.244\.\S+)", out)) == ["10.244.1.10", "10.244.2.11", "10.244.2.12"]
    out = in_netns("busybox", "nslookup", "10.96.0.50").stdout
    assert "50.0.96.10.in-addr.arpa\tname = my-nginx.default.svc.cluster.local" in out
    out = in_netns("busybox", "nslookup", "-type=srv", "_http._tcp.my-nginx.default.svc.cluster.local").stdout
    assert "service = 0 100 80 my-nginx.default.svc.cluster.local" in out


def test_glibc_resolves_partial_names(in_netns):
    # e2e "should resolve DNS of partial qualified names": the search path does the rest.
    for name in ("kubernetes", "kubernetes.default", "kubernetes.default.svc"):
        result = in_netns("getent", "hosts", name)
        assert result.stdout.split() == ["10.96.0.1", "kubernetes.default.svc.cluster.local"], (name, result)


def test_dig_over_udp_and_tcp(in_netns):
    # e2e "should provide DNS for the cluster": both transports.
    for transport in ("+notcp", "+tcp"):
        out = in_netns("dig", transport, "+short", "kubernetes.default.svc.cluster.local").stdout
        assert out.split() == ["10.96.0.1"], transport


def test_external_names_fail_fast_instead_of_timing_out(in_netns):
    start = time.monotonic()
    result = in_netns("getent", "hosts", "example.com")
    assert result.returncode == 2 and time.monotonic() - start < 5  # not forwarded, and no 5 s timeout
    out = in_netns("dig", "example.com").stdout
    assert "status: REFUSED" in out


def test_nslookup_from_a_pod_reaches_the_lab_dns(kubectl, namespace):
    """The tutorial's step: `nslookup my-nginx` in a pod returns the Service's ClusterIP."""
    kubectl("create", "deployment", "my-nginx", "--image=nginx", "--port=80")
    kubectl("expose", "deployment", "my-nginx", "--port=80")
    cluster_ip = kubectl("get", "svc", "my-nginx", "-o", "jsonpath={.spec.clusterIP}").strip()
    kubectl("run", "dns-client", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    kubectl("wait", "--for=condition=Ready", "pod/dns-client", "--timeout=60s")
    out = kubectl("get", "svc", "kube-dns", "-n", "kube-system")
    assert re.search(r"kube-dns\s+ClusterIP\s+10\.96\.0\.10\s+<none>\s+53/UDP,53/TCP", out), out
    deadline = time.monotonic() + 30
    while True:  # the DNS pod may still be syncing right after `lab up`
        out = kubectl("exec", "dns-client", "--", "nslookup", "my-nginx", check=False)
        if f"Address: {cluster_ip}" in out or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "Server:\t\t10.96.0.10" in out, out
    assert re.search(rf"Name:\s+my-nginx\.{namespace}\.svc\.cluster\.local\nAddress: {re.escape(cluster_ip)}\n", out), out
