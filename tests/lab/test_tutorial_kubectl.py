"""Steps 1-16 of the tutorial (numbered as in notebooks/README.md, "Tutorial steps → cells") with real kubectl against the lab."""

from __future__ import annotations

import json
import re
from pathlib import Path

from k8snet.lab.polling import wait_until

MANIFESTS = Path(__file__).resolve().parents[2] / "data" / "manifests"


def ready_pods(kubectl, selector, count):
    def check():
        pods = json.loads(kubectl("get", "pods", "-l", selector, "-o", "json"))["items"]
        pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in pods if p["status"].get("phase") == "Running"
              and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        return ok if len(ok) == count == len(pods) else None
    return wait_until(f"{count} ready pods {selector}", check)


def test_tutorial_first_half(kubectl, namespace):
    # 1-3: the Deployment, pods on different nodes with pod-network IPs
    assert "deployment.apps/my-nginx created" in kubectl("apply", "-f", str(MANIFESTS / "run-my-nginx.yaml"))
    pods = ready_pods(kubectl, "run=my-nginx", 2)
    wide = kubectl("get", "pods", "-l", "run=my-nginx", "-o", "wide")
    assert re.match(r"NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE", wide)
    assert wide.count("Running") == 2 and wide.count("1/1") == 2
    assert len({p["spec"]["nodeName"] for p in pods}) == 2, "replicas should be spread over both nodes"
    ips = [p["status"]["podIP"] for p in pods]
    assert all(ip.startswith("10.244.") for ip in ips)
    custom = kubectl("get", "pods", "-l", "run=my-nginx", "-o", "custom-columns=POD_IP:.status.podIPs")
    assert custom.startswith("POD_IP") and all(f"[map[ip:{ip}]]" in custom for ip in ips)

    # 4: curl both pod IPs from a pod on another node: the welcome page, no NAT, no host port
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    for pod in pods:
        other = next(n["metadata"]["name"] for n in nodes if n["metadata"]["name"] != pod["spec"]["nodeName"])
        client = f"curl-{pod['metadata']['name'][-5:]}"
        kubectl("run", client, "--image=curlimages/curl", "--restart=Never",
                f"--overrides={json.dumps({'spec': {'nodeName': other}})}", "--command", "--", "sleep", "3600")
        ready_pods(kubectl, f"run={client}", 1)
        page = kubectl("exec", client, "--", "curl", "-s", "--max-time", "5", f"http://{pod['status']['podIP']}")
        assert "Welcome to nginx!" in page

    # 5-9: the Service
    assert "service/my-nginx exposed" in kubectl("expose", "deployment/my-nginx")
    svc = kubectl("get", "svc", "my-nginx")
    assert re.match(r"NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE", svc)
    assert re.search(r"my-nginx\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80/TCP", svc)

    def described():
        out = kubectl("describe", "svc", "my-nginx")
        return out if all(f"{ip}:80" in out for ip in ips) else None
    out = wait_until("both endpoints in describe", described)
    for field in ("Name:", "Namespace:", "Selector:", "Type:", "IP:", "Port:", "TargetPort:", "Endpoints:", "Session Affinity:"):
        assert field in out
    slices = kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=my-nginx")
    assert re.match(r"NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE", slices)
    assert "IPv4" in slices and all(ip in slices for ip in ips)
    ep = kubectl("get", "ep", "my-nginx")
    assert re.match(r"NAME\s+ENDPOINTS\s+AGE", ep) and all(f"{ip}:80" in ep for ip in ips)
    # as on any 1.33+ server (kubectl prints it on stderr, after the table here)
    assert "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice" in ep

    # 10-13: environment variables exist only in pods created after the Service
    before = kubectl("exec", pods[0]["metadata"]["name"], "--", "printenv")
    service_lines = [line for line in before.splitlines() if "SERVICE" in line]
    assert sorted(v.split("=")[0] for v in service_lines) == [
        "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS"]
    kubectl("scale", "deployment", "my-nginx", "--replicas=0")
    wait_until("no my-nginx pods", lambda: not json.loads(
        kubectl("get", "pods", "-l", "run=my-nginx", "-o", "json"))["items"])
    kubectl("scale", "deployment", "my-nginx", "--replicas=2")
    pods = ready_pods(kubectl, "run=my-nginx", 2)
    cluster_ip = json.loads(kubectl("get", "svc", "my-nginx", "-o", "json"))["spec"]["clusterIP"]
    after = kubectl("exec", pods[0]["metadata"]["name"], "--", "printenv")
    assert f"MY_NGINX_SERVICE_HOST={cluster_ip}" in after.splitlines()
    assert "MY_NGINX_SERVICE_PORT=80" in after.splitlines()

    # 14-16: cluster DNS
    dns = kubectl("get", "services", "kube-dns", "--namespace=kube-system")
    assert re.search(r"kube-dns\s+ClusterIP\s+10\.96\.0\.10\s+<none>\s+53/UDP,53/TCP", dns)
    kubectl("run", "dns-test", "--image=busybox:1.37", "--restart=Never", "--command", "--", "sleep", "3600")
    ready_pods(kubectl, "run=dns-test", 1)
    # busybox exits 1 when its AAAA queries end in NXDOMAIN, on real CoreDNS too
    answer = kubectl("exec", "dns-test", "--", "nslookup", "my-nginx", check=False)
    assert "10.96.0.10" in answer and cluster_ip in answer
