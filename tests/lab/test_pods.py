"""Pods on the lab behave like pods on a real node."""

from __future__ import annotations

from .kube import exec_in, pod, ready_pods, wait_until


def _running(core, namespace, name):
    return ready_pods(core, namespace, f"app={name}", 1)[0]


def test_identity_files_and_shared_localhost(core, namespace):
    """hostname = pod name; ClusterFirst resolv.conf; /etc/hosts; containers share localhost."""
    core.create_namespaced_pod(namespace, {"metadata": {"name": "duo", "labels": {"app": "duo"}}, "spec": {"containers": [
        {"name": "web", "image": "nginx"},
        {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}]}})
    p = _running(core, namespace, "duo")
    out, _, code = exec_in(core, namespace, "duo", ["hostname"], "sidecar")
    assert (out.strip(), code) == ("duo", 0)
    resolv, _, _ = exec_in(core, namespace, "duo", ["cat", "/etc/resolv.conf"], "sidecar")
    assert "nameserver 10.96.0.10" in resolv
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "options ndots:5" in resolv
    hosts, _, _ = exec_in(core, namespace, "duo", ["cat", "/etc/hosts"], "sidecar")
    assert f"{p.status.pod_ip}\tduo" in hosts
    page, _, code = exec_in(core, namespace, "duo", ["wget", "-qO-", "http://localhost:80"], "sidecar")
    assert code == 0 and "Welcome to nginx!" in page, "the sidecar reaches nginx over the pod's shared localhost"


def test_pods_reach_the_api_server_through_the_kubernetes_service(core, namespace):
    core.create_namespaced_pod(namespace, pod("api", "curlimages/curl", ["sleep", "3600"]))
    _running(core, namespace, "api")
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    out, err, code = exec_in(core, namespace, "api", ["sh", "-c",
        f'curl -s --cacert {sa}/ca.crt -H "Authorization: Bearer $(cat {sa}/token)" '
        f'https://kubernetes.default.svc/api/v1/namespaces/$(cat {sa}/namespace)/pods/api'])
    assert code == 0, err
    assert '"name": "api"' in out or '"name":"api"' in out


def test_readiness_probe_gates_endpoints(core, namespace):
    spec = {"containers": [{"name": "web", "image": "busybox", "command": ["sleep", "3600"],
                            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}]}
    core.create_namespaced_pod(namespace, {"metadata": {"name": "gated", "labels": {"app": "gated"}}, "spec": spec})
    core.create_namespaced_service(namespace, {"metadata": {"name": "gated"},
                                               "spec": {"selector": {"app": "gated"}, "ports": [{"port": 80}]}})
    wait_until("the pod to run", lambda: core.read_namespaced_pod("gated", namespace).status.phase == "Running")

    def addresses(kind):
        subsets = core.read_namespaced_endpoints("gated", namespace).subsets or []
        return [a for s in subsets for a in (getattr(s, kind) or [])]
    wait_until("the unready pod listed as not ready", lambda: addresses("not_ready_addresses"))
    assert addresses("addresses") == []
    exec_in(core, namespace, "gated", ["touch", "/tmp/ready"])
    wait_until("the pod to become a ready endpoint", lambda: addresses("addresses"), timeout=15)


def test_crashing_container_restarts_with_back_off(core, namespace):
    core.create_namespaced_pod(namespace, pod("crash", "busybox", ["sh", "-c", "echo boom; exit 1"]))

    def backing_off():
        st = core.read_namespaced_pod("crash", namespace).status
        cs = (st.container_statuses or [None])[0]
        return cs if cs and cs.restart_count >= 1 and cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff" else None
    cs = wait_until("CrashLoopBackOff", backing_off, timeout=30)
    assert cs.last_state.terminated.exit_code == 1
    assert core.read_namespaced_pod_log("crash", namespace, previous=True) == "boom\n"


def test_unknown_image_is_err_image_pull_naming_the_catalog(core, namespace):
    core.create_namespaced_pod(namespace, pod("nope", "example.com/does-not-exist:1", ["true"]))

    def waiting():
        cs = (core.read_namespaced_pod("nope", namespace).status.container_statuses or [None])[0]
        pulling = cs and cs.state.waiting and cs.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff")
        return cs.state.waiting if pulling else None
    reason = wait_until("ErrImagePull", waiting)
    assert "nginx" in reason.message and "busybox" in reason.message, reason.message


def test_rolling_update_replaces_every_pod(kubectl):
    kubectl("create", "deployment", "roll", "--image=nginx", "--replicas=3")
    kubectl("rollout", "status", "deployment/roll", "--timeout=60s")
    old = set(kubectl("get", "pods", "-l", "app=roll", "-o", "name").split())
    kubectl("set", "image", "deployment/roll", "nginx=nginx:1.27")
    out = kubectl("rollout", "status", "deployment/roll", "--timeout=90s")
    assert 'deployment "roll" successfully rolled out' in out
    new = wait_until("old pods gone", lambda: (lambda names: names if not names & old and len(names) == 3 else None)(
        set(kubectl("get", "pods", "-l", "app=roll", "-o", "name", "--field-selector=status.phase=Running").split())))
    assert len(new) == 3
    rs = kubectl("get", "rs", "-l", "app=roll")
    assert rs.count("roll-") == 2
