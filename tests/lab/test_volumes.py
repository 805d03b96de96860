"""Secret, configMap and projected volumes on the lab: items, defaultMode, optional,
read-only mounts inside the pod only, and updates that reach the mounted files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from k8snet.lab.polling import wait_until

from .test_tutorial_kubectl import ready_pods


def apply(kubectl, obj: dict) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def sh(kubectl, pod: str, script: str, check: bool = True) -> str:
    return kubectl("exec", pod, "--", "sh", "-c", script, check=check)


POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vols", "labels": {"app": "vols"}},
    "spec": {
        "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"], "volumeMounts": [
            {"name": "sec", "mountPath": "/etc/sec"},
            {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": False},
            {"name": "missing", "mountPath": "/etc/missing"},
            {"name": "all", "mountPath": "/etc/all"},
        ]}],
        "volumes": [
            {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o440,
                                       "items": [{"key": "password", "path": "db/password", "mode": 0o400},
                                                 {"key": "user", "path": "user"}]}},
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "missing", "configMap": {"name": "does-not-exist", "optional": True}},
            {"name": "all", "projected": {"defaultMode": 0o444, "sources": [
                {"configMap": {"name": "settings", "items": [{"key": "color", "path": "color"}]}},
                {"secret": {"name": "creds", "items": [{"key": "user", "path": "who"}]}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            ]}},
        ],
    },
}


def test_secret_configmap_projected_volumes(kubectl, namespace):
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                    "data": {"color": "blue", "size": "10"}})
    apply(kubectl, POD)
    # a non-optional Secret that does not exist yet: the pod waits, as on a real node
    wait_until("FailedMount event", lambda: 'secret "creds" not found' in kubectl(
        "get", "events", "--field-selector", "involvedObject.name=vols"), timeout=20)
    assert "ContainerCreating" in kubectl("get", "pod", "vols")
    kubectl("create", "secret", "generic", "creds", "--from-literal=user=admin", "--from-literal=password=s3cret")
    ready_pods(kubectl, "app=vols", 1)

    assert sh(kubectl, "vols", "cat /etc/sec/db/password /etc/sec/user") == "s3cretadmin"
    modes = sh(kubectl, "vols", "stat -L -c '%n %a' /etc/sec/db/password /etc/sec/user /etc/cfg/color /etc/all/who")
    assert modes.split("\n")[:4] == ["/etc/sec/db/password 400", "/etc/sec/user 440", "/etc/cfg/color 644",
                                     "/etc/all/who 444"]
    assert sh(kubectl, "vols", "ls /etc/sec; ls /etc/missing | wc -l").split() == ["db", "user", "0"]
    assert sh(kubectl, "vols", "cat /etc/all/color /etc/all/who /etc/all/name") == "blueadminvols"
    # read-only whatever the volumeMount says (the kubelet's rule for these kinds)
    for path in ("/etc/sec/x", "/etc/cfg/x", "/etc/all/x"):
        assert "Read-only file system" in sh(kubectl, "vols", f"touch {path}", check=False)
    # the mounts exist in the container's mount namespace only
    assert not any(" /etc/sec " in line or " /etc/cfg " in line
                   for line in Path("/proc/self/mountinfo").read_text().splitlines())

    # updates: a changed key, a new key, a removed key, through both plain and projected volumes
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                    "data": {"color": "green", "shape": "round"}})
    wait_until("the ConfigMap update in the pod", lambda: sh(
        kubectl, "vols", "cat /etc/cfg/color /etc/all/color; ls /etc/cfg") == "greengreencolor\nshape\n", timeout=5)
    kubectl("patch", "secret", "creds", "-p", json.dumps({"data": {"user": base64.b64encode(b"root").decode()}}))
    wait_until("the Secret update in the pod", lambda: sh(
        kubectl, "vols", "cat /etc/sec/user /etc/all/who") == "rootroot", timeout=5)
    # a deleted Secret leaves the files as they were (the kubelet cannot read it, keeps the last)
    kubectl("delete", "secret", "creds")
    assert sh(kubectl, "vols", "cat /etc/sec/user") == "root"
