"""`k8snet lab stop|start`, and `up` after a crash: the lab comes back with its objects.

One lab goes through the whole story: objects made, ``stop`` (host as before, state
kept and private), ``start`` (every object back with the same ClusterIP and NodePort,
the Deployment's pods Ready again under their names and UIDs and answering through
the Service), ``kill -9`` of the supervisor and ``up`` (the same again), ``down``
(nothing left, the state folder and lock file gone too).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from k8snet.lab import lifecycle, statelock
from k8snet.lab.config import LabConfig
from k8snet.lab.net import nsutil
from k8snet.lab.polling import wait_until

from .hoststate import host_snapshot, lab_leftovers
from .kube import deployment, ready_pods

NS = "keep"
LABELS = {"app": "web"}


def _api(st: lifecycle.LabStatus) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(st.kubeconfig))


def _make_objects(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": NS, "labels": {"purpose": "stop-start"}}})
    apps.create_namespaced_deployment(NS, deployment("web", "nginx", 2, LABELS, port=80))
    core.create_namespaced_service(NS, {"metadata": {"name": "web"}, "spec": {
        "type": "NodePort", "selector": LABELS, "ports": [{"port": 80, "targetPort": 80}]}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}, "data": {"greeting": "hello"}})
    ready_pods(core, NS, "app=web", 2)


def _snapshot(api: client.ApiClient) -> dict[str, Any]:
    """What must come back unchanged."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    svc = core.read_namespaced_service("web", NS)
    dep = apps.read_namespaced_deployment("web", NS)
    return {
        "namespace": core.read_namespace(NS).metadata.uid,
        "nodes": sorted((n.metadata.name, n.metadata.uid) for n in core.list_node().items),
        "service": (svc.metadata.uid, svc.spec.cluster_ip, svc.spec.ports[0].node_port),
        "deployment": (dep.metadata.uid, dep.spec.replicas),
        "replicasets": sorted(rs.metadata.uid for rs in apps.list_namespaced_replica_set(NS).items),
        "pods": sorted((p.metadata.name, p.metadata.uid) for p in core.list_namespaced_pod(NS).items),
        "secret": core.read_namespaced_secret("creds", NS).data,
        "configmap": core.read_namespaced_config_map("settings", NS).data,
    }


def _node_ip(api: client.ApiClient) -> str:
    node = client.CoreV1Api(api).list_node().items[0]
    return next(a.address for a in node.status.addresses if a.type == "InternalIP")


def _answers_through_the_service(name: str, api: client.ApiClient, cluster_ip: str, node_port: int) -> None:
    """nginx answers at the NodePort from the host and at the ClusterIP from a node."""
    url = f"http://{_node_ip(api)}:{node_port}/"

    def from_host() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return b"Welcome to nginx" in resp.read()
        except OSError:
            return False
    wait_until(f"nginx at {url}", from_host, 30)
    inside = subprocess.run(["ip", "netns", "exec", f"k8snet-{name}-n0", "curl", "-s", "-m", "3",
                             f"http://{cluster_ip}/"], capture_output=True, text=True, timeout=30)
    assert "Welcome to nginx" in inside.stdout, inside.stderr


def _comes_back(name: str, st: lifecycle.LabStatus, before: dict[str, Any], restarts: int) -> None:
    api = _api(st)
    try:
        core = client.CoreV1Api(api)
        pods = ready_pods(core, NS, "app=web", 2)
        assert _snapshot(api) == before
        # a node restart: same pods, new sandboxes, the containers' restart counted
        assert all(p.status.container_statuses[0].restart_count == restarts for p in pods)
        assert all(p.status.container_statuses[0].last_state.terminated.reason == "Unknown" for p in pods)
        _, cluster_ip, node_port = before["service"]
        _answers_through_the_service(name, api, cluster_ip, node_port)
        assert client.CoreV1Api(api).read_namespaced_secret("creds", NS).data["password"] == "czNjcmV0"
    finally:
        api.close()


def _private_except_container_contents(folder: Path) -> None:
    """0600/0700 for everything the lab keeps; only what containers see (their
    volumes' files with the pod's defaultMode, their image files, the pod's hosts,
    resolv.conf and hostname, the folders a container's root is assembled in, the
    images' tool folders and /etc layer — what a
    container's own user must read) keeps its modes,
    behind folders only root may enter."""
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.rglob("*"):
        if path.is_symlink() or not stat.S_IMODE(path.lstat().st_mode) & 0o077:
            continue
        parts = path.relative_to(folder).parts
        in_pod = parts[0] == "pods" and (len(parts) > 3 and (parts[2] == "volumes" or {"rootfs", "scratch"} & set(parts))
                                         or len(parts) == 3 and parts[2] in ("hosts", "resolv.conf", "hostname"))
        in_images = len(parts) > 1 and parts[0] == "images"
        assert in_pod or in_images, path
        for depth in (1, 2) if in_pod else (1,):  # pods/ and pods/<uid>/, or images/
            assert stat.S_IMODE((folder / Path(*parts[:depth])).stat().st_mode) == 0o700, path


def test_stop_start_and_crash_keep_every_object(state_root):
    name = f"ss{os.getpid() % 10000}"
    host_before = host_snapshot(name)
    try:
        st = lifecycle.up(LabConfig(name=name, nodes=2))
        server = st.server
        api = _api(st)
        _make_objects(api)
        before = _snapshot(api)
        api.close()
        _private_except_container_contents(state_root / name)

        stopped = lifecycle.stop(name)
        assert stopped.phase == "Stopped" and "start" in stopped.message
        assert lab_leftovers(name) == {}
        assert host_snapshot(name) == host_before, "a stopped lab leaves the host as down does"
        assert not (state_root / name / "pods").exists()
        _private_except_container_contents(state_root / name)

        st = lifecycle.start(name)
        assert st.phase == "Ready" and st.server == server, "the kubeconfig keeps working"
        _comes_back(name, st, before, restarts=1)

        os.kill(st.pid, signal.SIGKILL)
        wait_until("the lab to show as crashed", lambda: lifecycle.status(name).phase == "Crashed", 10)
        st = lifecycle.up(LabConfig(name=name, nodes=2))
        assert st.phase == "Ready" and st.server == server
        _comes_back(name, st, before, restarts=2)
    finally:
        lifecycle.down(name)
    assert lab_leftovers(name) == {}
    assert host_snapshot(name) == host_before
    assert not (state_root / name).exists()
    assert not statelock.lock_path(name, state_root).exists()
    assert lifecycle.status(name).phase == "Absent"


def _cli(*args: str) -> subprocess.Popen[str]:
    # Ctrl-C's SIGINT as in a terminal: a test run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then keeps it ignored.
    return subprocess.Popen([sys.executable, "-m", "k8snet", "lab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_two_concurrent_ups_of_one_name_both_get_the_lab(state_root):
    name = f"cc{os.getpid() % 10000}"
    try:
        first, second = _cli("up", "--name", name, "--nodes", "1"), _cli("up", "--name", name, "--nodes", "1")
        outs = [p.communicate(timeout=180) for p in (first, second)]
        assert first.returncode == second.returncode == 0, outs
        assert lifecycle.status(name).phase == "Ready"
    finally:
        lifecycle.down(name)
    assert lab_leftovers(name) == {}


def test_ctrl_c_during_up_stops_the_start_and_cleans_up(state_root):
    name = f"ci{os.getpid() % 10000}"
    host_before = host_snapshot(name)
    up = _cli("up", "--name", name, "--nodes", "1")
    try:
        # interrupt once the supervisor is building the lab
        wait_until("the supervisor to start", lambda: lifecycle.status(name).phase == "Starting", 30)
        seen = time.monotonic()
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    try:
        # Exit 0 here meant the command never saw the signal (SIGINT ignored, see _cli).
        log = (state_root / name / "supervisor.log")
        assert up.returncode == 130, (f"exit {up.returncode} {time.monotonic() - seen:.2f} s after SIGINT; "
                                      f"stdout {out!r}; stderr {err!r}; "
                                      f"log: {log.read_text()[-2000:] if log.exists() else '(none)'}")
        assert err.count("\n") == 1 and err.startswith(f"k8snet: interrupted: lab '{name}' was not started"), err
        time.sleep(0.5)  # nothing may come up in the background after the command returned
        assert lab_leftovers(name) == {}
        assert host_snapshot(name) == host_before
        assert lifecycle.status(name).phase in ("Absent", "Failed")  # at most the log of the start is kept
    finally:
        lifecycle.down(name)  # a start the signal missed must not outlive the test either
    assert not (state_root / name).exists()

def test_a_lab_of_the_same_name_in_another_state_folder_is_left_alone(state_root, tmp_path, monkeypatch):
    """Network namespaces are named after the lab: `up` or `down` of a lab of that name
    kept in another state folder refuses, and the running lab keeps its network."""
    name = f"tw{os.getpid() % 10000}"
    lifecycle.up(LabConfig(name=name, nodes=1))
    try:
        mine = lifecycle.load_config(name)
        namespaces = nsutil.list_netns(mine.netns_prefix)
        assert namespaces
        monkeypatch.setenv("K8SNET_STATE_ROOT", str(tmp_path / "elsewhere"))
        for attempt in (lambda: lifecycle.up(LabConfig(name=name, nodes=1)), lambda: lifecycle.down(name)):
            with pytest.raises(lifecycle.LabError, match="running from another state folder") as refused:
                attempt()
            assert str(mine.state_dir) in str(refused.value)
        assert nsutil.list_netns(mine.netns_prefix) == namespaces
        assert not (tmp_path / "elsewhere" / name / "config.json").exists()
        monkeypatch.setenv("K8SNET_STATE_ROOT", str(state_root))
        assert lifecycle.status(name).phase == "Ready"
    finally:
        monkeypatch.setenv("K8SNET_STATE_ROOT", str(state_root))
        lifecycle.down(name)
