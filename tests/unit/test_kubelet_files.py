"""resolv.conf, hosts, pod status and CRI log rendering (pure functions, no root)."""

from k8snet.lab.kubelet import dnsfiles, init, runtime
from k8snet.lab.kubelet.podworker import restart_delay, should_restart
from k8snet.lab.kubelet.status import ContainerRecord, merge_patch, pod_phase, pod_status

POD = {"metadata": {"name": "web", "namespace": "demo"}, "spec": {"containers": []}}


def test_resolv_cluster_first():
    text = dnsfiles.resolv_conf({}, "demo", cluster_domain="cluster.local", dns_ip="10.96.0.10")
    assert text == ("search demo.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 10.96.0.10\noptions ndots:5\n")


def test_resolv_none_with_dns_config():
    spec = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["a.b"],
                                                "options": [{"name": "ndots", "value": "2"}]}}
    assert dnsfiles.resolv_conf(spec, "x", cluster_domain="c", dns_ip="d") == \
        "search a.b\nnameserver 1.2.3.4\noptions ndots:2\n"


def test_resolv_default_uses_host():
    text = dnsfiles.resolv_conf({"dnsPolicy": "Default"}, "x", cluster_domain="c", dns_ip="d",
                                host_resolv="nameserver 9.9.9.9\nsearch lan\n")
    assert text == "search lan\nnameserver 9.9.9.9\n"


def test_hosts_file():
    pod = {"metadata": {"name": "web", "namespace": "demo"},
           "spec": {"hostname": "h", "subdomain": "s", "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a", "b"]}]}}
    text = dnsfiles.hosts_file(pod, ["10.244.1.5"], "cluster.local")
    assert "10.244.1.5\th.s.demo.svc.cluster.local\th\n" in text
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert text.endswith("# Entries added by HostAliases.\n1.1.1.1\ta\tb\n")


def test_phase_and_conditions():
    running = ContainerRecord("a", "img")
    running.set_running("k8snet://1", "2025-01-01T00:00:00.123456789Z")
    running.ready = True
    st = pod_status({"conditions": [{"type": "PodScheduled", "status": "True"}]}, restart_policy="Always",
                    sandbox_ready=True, init=[], containers=[running], pod_ip="10.244.1.2", host_ip="172.31.0.3",
                    start_time="t", timestamp="T")
    assert st["phase"] == "Running" and st["podIPs"] == [{"ip": "10.244.1.2"}]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"PodScheduled": "True", "Ready": "True", "ContainersReady": "True",
                     "Initialized": "True", "PodReadyToStartContainers": "True"}
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    assert {"image", "imageID", "name", "ready", "restartCount"} <= set(cs)


def test_phase_rules():
    done = ContainerRecord("a", "i")
    done.set_terminated(0, "s", "f")
    failed = ContainerRecord("b", "i")
    failed.set_terminated(1, "s", "f")
    assert pod_phase("Never", [], [done]) == "Succeeded"
    assert pod_phase("Never", [], [done, failed]) == "Failed"
    assert pod_phase("OnFailure", [], [failed]) == "Running"
    crash = ContainerRecord("c", "i")
    crash.set_terminated(2, "s", "f")
    crash.back_off("back-off 10s")
    assert pod_phase("Always", [], [crash]) == "Running"  # CrashLoopBackOff pods are Running
    assert pod_phase("Always", [], [ContainerRecord("d", "i")]) == "Pending"


def test_merge_patch_nulls_removed_keys():
    assert merge_patch({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"c": 1}, "e": [1]}) == \
        {"a": None, "b": {"d": None}, "e": [1]}


def test_back_off():
    assert [restart_delay(n) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]
    assert should_restart("OnFailure", 1) and not should_restart("OnFailure", 0)
    assert not should_restart("Never", 1) and should_restart("Always", 0)


def test_cri_log_rendering():
    data = (b"2025-01-01T00:00:00.000000001Z stdout F hello\n"
            b"2025-01-01T00:00:00.000000002Z stderr P par\n"
            b"2025-01-01T00:00:00.000000003Z stderr F tial\n"
            b"2025-01-01T00:00:00.000000004Z stdout F bye\n")
    assert runtime.render_log(data) == b"hello\npartial\nbye\n"
    assert runtime.render_log(data, tail_lines=1) == b"bye\n"
    assert runtime.render_log(data, tail_lines=2) == b"partial\nbye\n"
    assert runtime.render_log(data, timestamps=True).startswith(b"2025-01-01T00:00:00.000000001Z hello\n")


def test_exit_codes():
    assert runtime.exit_code_of(-9) == 137 and runtime.exit_code_of(3) == 3


def test_overlay_plan_only_for_missing_points_under_host_dirs():
    existing = {"/", "/usr", "/usr/share", "/usr/local/bin"}
    spec = {"rootfs": {"host_dirs": ["/usr"]}, "mounts": [
        {"source": "/s/nginx", "target": "/etc/nginx"},
        {"source": "/t", "target": "/usr/local/bin"},
        {"source": "/v/data", "target": "/usr/share/web/x"},
        {"source": "/v/tok", "target": "/run/secrets/kubernetes.io/serviceaccount"},
    ]}
    assert init.plan_overlays(spec, existing.__contains__) == ["/usr/share"]
