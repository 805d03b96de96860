"""A pod is contained: its own root file system (no lab state, no host secrets, no
host /tmp or /var), containerd's default capabilities, and the securityContext
(runAsUser, readOnlyRootFilesystem, allowPrivilegeEscalation, runAsNonRoot,
privileged) applied; subPath cannot leave its volume."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from k8snet.lab.polling import wait_until

from .test_tutorial_kubectl import ready_pods

DEFAULT_CAP_EFF = "00000000a80425fb"  # containerd's defaultUnixCaps


def pod(name: str, security: dict | None = None, pod_security: dict | None = None, **extra) -> str:
    container = {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                 "securityContext": security or {}, **extra.pop("container", {})}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
                       "spec": {"containers": [container], "securityContext": pod_security or {},
                                "terminationGracePeriodSeconds": 0, **extra}})


def sh(kubectl, name: str, script: str, check: bool = True) -> str:
    return kubectl("exec", name, "--", "sh", "-c", script, check=check)


def waiting(kubectl, name: str) -> dict | None:
    status = json.loads(kubectl("get", "pod", name, "-o", "json", stderr=False))["status"]
    for cs in status.get("containerStatuses") or []:
        if (cs.get("state") or {}).get("waiting", {}).get("message"):
            return cs["state"]["waiting"]
    return None


def test_pod_sees_nothing_of_the_host(kubectl, namespace, lab):
    state_dir = Path(str(lab.kubeconfig)).parent
    kubectl("apply", "-f", "-", input=pod("iso"))
    ready_pods(kubectl, "app=iso", 1)
    for path in (state_dir / "pki" / "admin.key", "/var/lib/k8snet", "/etc/shadow", "/etc/ssh",
                 "/root/.bashrc", "/home"):
        out = sh(kubectl, "iso", f"cat {path} 2>&1 || ls -A {path} 2>&1; true")
        assert "PRIVATE KEY" not in out and ":$" not in out, (path, out)
    assert sh(kubectl, "iso", "ls -A /home /root").split() == ["/home:", "/root:"]  # empty, private
    assert sh(kubectl, "iso", f"test -e {state_dir} || test -e /var/lib/k8snet || echo absent") == "absent\n"
    # the pod's /tmp and /var/tmp are its own
    marker = f"k8snet-contain-{uuid.uuid4().hex}"
    sh(kubectl, "iso", f"echo x > /tmp/{marker} && echo x > /var/tmp/{marker}")
    assert not Path("/tmp", marker).exists() and not Path("/var/tmp", marker).exists()
    assert sh(kubectl, "iso", f"cat /tmp/{marker} /var/tmp/{marker}") == "x\nx\n"


def test_default_capabilities_and_no_new_privs(kubectl, namespace):
    kubectl("apply", "-f", "-", input=pod("caps"))
    kubectl("apply", "-f", "-", input=pod("nnp", {"allowPrivilegeEscalation": False,
                                                  "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}))
    ready_pods(kubectl, "app=caps", 1)
    ready_pods(kubectl, "app=nnp", 1)
    status = sh(kubectl, "caps", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/1/status /proc/self/status")
    for source in ("/proc/1/status", "/proc/self/status"):  # the container and an exec in it
        assert f"{source}:CapEff:\t{DEFAULT_CAP_EFF}" in status and f"{source}:NoNewPrivs:\t0" in status
    status = sh(kubectl, "nnp", "grep -E '^(CapEff|NoNewPrivs)' /proc/1/status /proc/self/status")
    for source in ("/proc/1/status", "/proc/self/status"):
        assert f"{source}:CapEff:\t{1 << 10:016x}" in status and f"{source}:NoNewPrivs:\t1" in status


def test_run_as_user_and_read_only_root(kubectl, namespace):
    kubectl("apply", "-f", "-", input=pod("user", {"readOnlyRootFilesystem": True},
                                          {"runAsUser": 1000, "runAsGroup": 3000}))
    ready_pods(kubectl, "app=user", 1)
    assert sh(kubectl, "user", "id -u; id -g; awk '{print $2}' /proc/1/status | sed -n 9p") == "1000\n3000\n1000\n"
    assert "Read-only file system" in sh(kubectl, "user", "touch /x 2>&1; true")
    assert sh(kubectl, "user", "grep CapEff /proc/self/status") == "CapEff:\t0000000000000000\n"


def test_run_as_non_root_with_a_root_image_is_refused(kubectl, namespace):
    kubectl("apply", "-f", "-", input=pod("nonroot", {"runAsNonRoot": True}))
    state = wait_until("CreateContainerConfigError", lambda: waiting(kubectl, "nonroot"), timeout=30)
    assert state["reason"] == "CreateContainerConfigError"
    assert state["message"].startswith('container has runAsNonRoot and image will run as root (pod: "nonroot_')
    kubectl("apply", "-f", "-", input=pod("priv", {"privileged": True}))
    state = wait_until("privileged refused", lambda: waiting(kubectl, "priv"), timeout=30)
    assert state["reason"] == "CreateContainerConfigError" and "privileged containers are refused" in state["message"]
    assert "privileged containers are refused" in kubectl("get", "events", "--field-selector",
                                                          "involvedObject.name=priv")


def test_sub_path_cannot_escape_its_volume(kubectl, namespace):
    # the first container plants a symlink to / in the shared emptyDir; the second
    # mounts it by subPath
    spec = {"volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [{"name": "plant", "image": "busybox", "command": ["ln", "-s", "/", "/v/escape"],
                                "volumeMounts": [{"name": "shared", "mountPath": "/v"}]}],
            "container": {"volumeMounts": [{"name": "shared", "mountPath": "/host", "subPath": "escape"}]}}
    kubectl("apply", "-f", "-", input=pod("escape", **spec))
    state = wait_until("subPath refused", lambda: waiting(kubectl, "escape"), timeout=30)
    assert state["reason"] == "CreateContainerConfigError"
    assert 'subpath "escape" resolves outside the volume' in state["message"]
