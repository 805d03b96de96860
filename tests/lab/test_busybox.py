"""The checks tutorials run from a ``busybox:1.37`` pod, with the answers and exit codes
busybox 1.37 gives: wget (-q, -O, -T, --spider, -S, -U, --header, redirects, errors,
HTTPS), nslookup and ping.

The lab's busybox is Debian 12's 1.35, whose ``wget -T`` segfaults; the image's wget
launcher (k8snet/lab/images/assets/wget.py) bridges that and HTTPS. One namespace
serves the module: an agnhost netexec backend behind Service ``web``, a Service with
no endpoints, and the busybox client.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Iterator

import pytest
from kubernetes import client

from .conftest import temporary_namespace
from .kube import exec_in, pod, ready_pods, wait_until
from .svcprobe import AGNHOST, wait_endpoints


@pytest.fixture(scope="module")
def setup(core: client.CoreV1Api) -> Iterator[dict[str, str]]:
    """Creates the backend, the two Services and the client; yields their addresses."""
    for namespace in temporary_namespace(core):
        core.create_namespaced_pod(namespace, pod("web", AGNHOST, ["/agnhost", "netexec", "--http-port=8080"]))
        core.create_namespaced_pod(namespace, pod("client", "busybox:1.37", ["sleep", "3600"]))
        for name, selector in (("web", "web"), ("empty", "nothing-has-this-label")):
            core.create_namespaced_service(namespace, {"metadata": {"name": name}, "spec": {
                "selector": {"app": selector}, "ports": [{"port": 80, "targetPort": 8080}]}})
        web_pod = ready_pods(core, namespace, "app=web", 1)[0]
        ready_pods(core, namespace, "app=client", 1)
        wait_endpoints(core, namespace, "web", 1)
        addresses = {"namespace": namespace, "web_pod": web_pod.status.pod_ip,
                     "web": core.read_namespaced_service("web", namespace).spec.cluster_ip,
                     "empty": core.read_namespaced_service("empty", namespace).spec.cluster_ip}

        # kube-proxy lags the Services by up to its minSyncPeriod. The REJECT of "empty" is asked
        # once a second: the node's ICMP replies are rate-limited per destination (the
        # kernel's icmp_ratelimit), and a refused SYN that gets no ICMP is resent after 1 s.
        wait_until("kube-proxy to program web", functools.partial(_answers, core, namespace, "http://web/"))
        wait_until("kube-proxy to program empty", functools.partial(_refused, core, namespace, "http://empty/"),
                   interval=1.0)
        time.sleep(1.0)
        yield addresses


def run_in(core: client.CoreV1Api, namespace: str, *command: str) -> tuple[str, str, int]:
    return exec_in(core, namespace, "client", list(command))


def _answers(core: client.CoreV1Api, namespace: str, url: str) -> bool:
    return run_in(core, namespace, "wget", "-qO-", url)[2] == 0


def _refused(core: client.CoreV1Api, namespace: str, url: str) -> bool:
    return "Connection refused" in run_in(core, namespace, "wget", "-qO-", "-T", "3", url)[1]


def run(core: client.CoreV1Api, setup: dict[str, str], *command: str) -> tuple[str, str, int]:
    """Runs ``command`` in the busybox client: stdout, stderr, exit code."""
    return run_in(core, setup["namespace"], *command)


def test_wget_get_with_timeout_and_to_a_file(core, setup):
    assert run(core, setup, "wget", "-qO-", "-T", "2", "http://web/hostname") == ("web", "", 0)
    assert run(core, setup, "wget", "-qO-", "--timeout=2", "http://web/hostname") == ("web", "", 0)
    out, err, code = run(core, setup, "sh", "-c", "wget -q -T2 -O /tmp/page http://web/hostname && cat /tmp/page")
    assert (out, err, code) == ("web", "", 0)


def test_wget_spider_and_server_response(core, setup):
    out, err, code = run(core, setup, "wget", "--spider", "web")
    assert code == 0 and out == "", err
    assert err == f"Connecting to web ({setup['web']}:80)\nremote file exists\n"
    _, err, code = run(core, setup, "wget", "-S", "-q", "-O", "/dev/null", "-T", "2", "http://web/hostname")
    assert code == 0 and err.startswith("  HTTP/1.1 200 OK\n") and "  Content-Length: 3\n" in err, err


def test_wget_sends_http11_get_with_host_agent_and_headers(core, setup):
    headers = ["-U", "tutorial-agent", "--header", "X-Probe: yes", "-Y", "off"]
    out, _, code = run(core, setup, "wget", "-qO-", *headers, "http://web/header")
    assert code == 0, out
    assert re.search(r'"Host": \["web"\]', out) and '"User-Agent": ["tutorial-agent"]' in out, out
    assert '"X-Probe": ["yes"]' in out, out


def test_wget_follows_redirects(core, setup):
    assert run(core, setup, "wget", "-qO-", "http://web/redirect?location=/hostname") == ("web", "", 0)


def test_wget_errors_are_busybox_messages_with_exit_1(core, setup):
    out, err, code = run(core, setup, "wget", "-qO-", "-T", "2", "http://web/echo?code=404")
    assert (out, err, code) == ("", "wget: server returned error: HTTP/1.1 404 Not Found\n", 1)
    assert run(core, setup, "wget", "-qO-", "-T", "2", "http://nosuch/") == ("", "wget: bad address 'nosuch'\n", 1)


def test_wget_to_a_service_without_endpoints_fails_fast(core, setup):
    # kube-proxy REJECTs a Service with no endpoints: refused at once, not timed out
    start = time.monotonic()
    out, err, code = run(core, setup, "wget", "-qO-", "-T", "2", "http://empty/")
    elapsed = time.monotonic() - start
    assert (out, err, code) == ("", f"wget: can't connect to remote host ({setup['empty']}): Connection refused\n", 1)
    assert elapsed < 1.5, elapsed


def test_wget_timeout_ends_a_slow_answer(core, setup):
    # netexec's /shell answers after the command: 10 s here, the timeout is 2 s
    start = time.monotonic()
    out, err, code = run(core, setup, "wget", "-qO-", "-T", "2", f"http://{setup['web_pod']}:8080/shell?cmd=sleep%2010")
    elapsed = time.monotonic() - start
    assert (out, err, code) == ("", "wget: download timed out\n", 1)
    assert 1.9 < elapsed < 6, elapsed


def test_wget_https_does_not_validate_certificates_like_the_real_image(core, setup):
    # busybox's own TLS in the real image: no validation, and it says so
    out, err, code = run(core, setup, "wget", "-qO-", "-T", "5", "https://kubernetes.default.svc/version")
    assert code == 0 and '"gitVersion"' in out, (out, err)
    assert err == "wget: note: TLS certificate validation not implemented\n"


def test_nslookup_service_name(core, setup):
    out, _, _ = run(core, setup, "nslookup", "web")
    # busybox >= 1.28 output; its exit code is 1 because the other search domains
    # answer NXDOMAIN, on real clusters too, so the output is the check
    assert out.startswith("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n"), out
    assert f"Name:\tweb.{setup['namespace']}.svc.cluster.local\nAddress: {setup['web']}\n" in out, out


def test_nslookup_kubernetes_default_as_busybox_does(core, setup):
    # busybox >= 1.28 applies the search list only to names without a dot, so
    # "kubernetes.default" is asked as is and not found (docker-library/busybox#48);
    # the full name answers. The lab refuses names outside the cluster (CoreDNS would
    # forward them and relay NXDOMAIN).
    out, _, code = run(core, setup, "nslookup", "kubernetes.default")
    assert code == 1 and "** server can't find kubernetes.default: REFUSED" in out, out
    out, _, code = run(core, setup, "nslookup", "kubernetes.default.svc.cluster.local")
    assert code == 0 and "Name:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n" in out, out


def test_ping_a_pod(core, setup):
    out, err, code = run(core, setup, "ping", "-c1", setup["web_pod"])
    assert code == 0, err
    assert f"64 bytes from {setup['web_pod']}: seq=0" in out
    assert "1 packets transmitted, 1 packets received, 0% packet loss" in out
