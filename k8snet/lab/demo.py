"""The tutorial's first half, walked for real against a cluster with kubectl.

``python -m k8snet.lab.demo`` (with KUBECONFIG pointing at the lab) runs the steps
of "Connecting Applications with Services" — Deployment, pod IPs across nodes,
curl of each pod from a pod on another node, ``kubectl expose``, the Service,
its endpoints, the environment variables before and after the Service, and DNS —
printing each command and its output, and checking what each step must show.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from .polling import wait_until

MANIFESTS = Path(__file__).resolve().parents[2] / "data" / "manifests"


class StepFailed(RuntimeError):
    pass


class Kubectl:
    """Runs kubectl, echoing the command and its output like a terminal session."""

    def __init__(self, namespace: str = "default", echo: bool = True):
        if shutil.which("kubectl") is None:
            raise StepFailed("kubectl is not on PATH")
        self.namespace = namespace
        self.echo = echo

    def __call__(self, *args: str, check: bool = True, quiet: bool = False) -> str:
        cmd = ["kubectl", "-n", self.namespace, *args]
        if self.echo and not quiet:
            print(f"$ kubectl {' '.join(args)}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        out = proc.stdout + proc.stderr
        if self.echo and not quiet:
            print(out.rstrip() + "\n", flush=True)
        if check and proc.returncode != 0:
            raise StepFailed(f"kubectl {' '.join(args)} failed ({proc.returncode}): {out.strip()}")
        return out

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json", quiet=True))


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise StepFailed(what)


def running_pods(kubectl: Kubectl, selector: str, count: int) -> list[dict]:
    def ready():
        pods = [p for p in kubectl.json("get", "pods", "-l", selector)["items"]
                if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in pods if p["status"].get("phase") == "Running"
              and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        return ok if len(ok) == count and len(pods) == count else None
    return wait_until(f"{count} ready pods with {selector}", ready)


def service_env(kubectl: Kubectl, pod: str) -> list[str]:
    out = kubectl("exec", pod, "--", "printenv")
    return sorted(line for line in out.splitlines() if "SERVICE" in line)


def main() -> int:
    k = Kubectl()
    helper_pods: list[str] = []
    run_id = secrets.token_hex(2)  # helper pod names of an earlier run may still be terminating
    try:
        k("apply", "-f", str(MANIFESTS / "run-my-nginx.yaml"))
        pods = running_pods(k, "run=my-nginx", 2)
        k("get", "pods", "-l", "run=my-nginx", "-o", "wide")
        nodes = {p["spec"]["nodeName"] for p in pods}
        _expect(len(nodes) == 2, f"the 2 replicas should run on different nodes, got {nodes}")
        k("get", "pods", "-l", "run=my-nginx", "-o", "custom-columns=POD_IP:.status.podIPs")

        print("# curl each nginx pod from a pod on another node (no NAT, no host ports)")
        all_nodes = [n["metadata"]["name"] for n in k.json("get", "nodes")["items"]]
        for pod in pods:
            other = next(n for n in all_nodes if n != pod["spec"]["nodeName"])
            client = f"curl-{run_id}-{other}"[:63].rstrip("-")
            if client not in helper_pods:
                helper_pods.append(client)
                k("run", client, "--image=curlimages/curl", "--restart=Never",
                  f"--overrides={json.dumps({'spec': {'nodeName': other}})}", "--command", "--", "sleep", "3600")
            running_pods(k, f"run={client}", 1)
            page = k("exec", client, "--", "curl", "-s", f"http://{pod['status']['podIP']}")
            _expect("Welcome to nginx!" in page, f"no nginx welcome page from {pod['status']['podIP']}")

        k("expose", "deployment/my-nginx")
        k("get", "svc", "my-nginx")
        describe = k("describe", "svc", "my-nginx")
        for pod in pods:
            _expect(f"{pod['status']['podIP']}:80" in describe, f"endpoint {pod['status']['podIP']}:80 missing")
        k("get", "endpointslices", "-l", "kubernetes.io/service-name=my-nginx")
        k("get", "ep", "my-nginx")

        print("# pods created before the Service have no MY_NGINX_ variables")
        before = service_env(k, pods[0]["metadata"]["name"])
        _expect(not any(v.startswith("MY_NGINX") for v in before), "MY_NGINX_ vars in a pod older than the Service")
        k("scale", "deployment", "my-nginx", "--replicas=0")
        wait_until("no my-nginx pods", lambda: not k.json("get", "pods", "-l", "run=my-nginx")["items"])
        k("scale", "deployment", "my-nginx", "--replicas=2")
        pods = running_pods(k, "run=my-nginx", 2)
        k("get", "pods", "-l", "run=my-nginx", "-o", "wide")
        after = service_env(k, pods[0]["metadata"]["name"])
        _expect(any(v.startswith("MY_NGINX_SERVICE_HOST=") for v in after), "no MY_NGINX_SERVICE_HOST after re-creation")

        k("get", "services", "kube-dns", "--namespace=kube-system")
        dns_test = f"dns-test-{run_id}"
        helper_pods.append(dns_test)
        k("run", dns_test, "--image=busybox:1.37", "--restart=Never", "--command", "--", "sleep", "3600")
        running_pods(k, f"run={dns_test}", 1)
        # busybox exits 1 when its AAAA queries end in NXDOMAIN, on real CoreDNS too
        answer = k("exec", dns_test, "--", "nslookup", "my-nginx", check=False)
        cluster_ip = k.json("get", "svc", "my-nginx")["spec"]["clusterIP"]
        _expect(cluster_ip in answer, f"nslookup my-nginx did not return {cluster_ip}")
        print("tutorial steps 1-16: all checks passed")
        return 0
    except (StepFailed, TimeoutError) as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    finally:
        if helper_pods:
            k("delete", "pod", *helper_pods, "--ignore-not-found", "--now", "--wait=false", check=False, quiet=True)
        k("delete", "service,deployment", "my-nginx", "--ignore-not-found", "--wait=false", check=False, quiet=True)


if __name__ == "__main__":
    sys.exit(main())
