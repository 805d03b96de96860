"""securityContext → what the container init applies; subPath containment; the
root file system's ingredients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from k8snet.lab.kubelet import rootfs
from k8snet.lab.kubelet.containers import subpath_source
from k8snet.lab.kubelet.security import CAPABILITIES, DEFAULT_CAPABILITIES, capability_set, container_security

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {}}


def test_default_capabilities_are_containerds() -> None:
    assert sum(1 << c for c in capability_set(None)) == 0xA80425FB
    sec = container_security(POD, {"name": "c"})
    assert (sec.uid, sec.gid, sec.no_new_privs, sec.read_only_root) == (0, 0, False, False)


def test_add_and_drop_follow_containerd() -> None:
    assert capability_set({"drop": ["ALL"], "add": ["NET_ADMIN"]}) == (CAPABILITIES["NET_ADMIN"],)
    assert capability_set({"add": ["ALL"]}) == tuple(range(len(CAPABILITIES)))
    kept = capability_set({"drop": ["NET_RAW", "CAP_CHOWN"]})
    assert CAPABILITIES["NET_RAW"] not in kept and CAPABILITIES["CHOWN"] not in kept
    assert len(kept) == len(DEFAULT_CAPABILITIES) - 2
    with pytest.raises(ValueError, match="CAP_BOGUS"):
        capability_set({"add": ["BOGUS"]})


def test_container_fields_override_the_pods() -> None:
    pod = {**POD, "spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "supplementalGroups": [3000]}}}
    sec = container_security(pod, {"name": "c", "securityContext": {"runAsUser": 1001,
                                                                    "allowPrivilegeEscalation": False,
                                                                    "readOnlyRootFilesystem": True}})
    assert (sec.uid, sec.gid, sec.groups, sec.no_new_privs, sec.read_only_root) == (1001, 2000, (2000, 3000),
                                                                                   True, True)
    assert "--reuid=1001" in sec.setpriv_args() and "--no-new-privs" in sec.setpriv_args()


def test_run_as_non_root_and_privileged_are_refused() -> None:
    with pytest.raises(ValueError, match=r'container has runAsNonRoot and image will run as root \(pod: "p_ns\(u1\)"'):
        container_security(POD, {"name": "c", "securityContext": {"runAsNonRoot": True}})
    with pytest.raises(ValueError, match="runAsUser breaks non-root policy"):
        container_security(POD, {"name": "c", "securityContext": {"runAsNonRoot": True, "runAsUser": 0}})
    assert container_security(POD, {"name": "c", "securityContext": {"runAsNonRoot": True, "runAsUser": 5}}).uid == 5
    with pytest.raises(ValueError, match="privileged containers are refused"):
        container_security(POD, {"name": "c", "securityContext": {"privileged": True}})


def test_subpath_cannot_leave_the_volume(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    (vol / "inner").mkdir(parents=True)
    (vol / "up").symlink_to("/etc")
    (vol / "rel").symlink_to("inner")
    with pytest.raises(ValueError, match="resolves outside the volume"):
        subpath_source(str(vol), "up", "v", "c")
    with pytest.raises(ValueError, match="resolves outside the volume"):
        subpath_source(str(vol), "up/new", "v", "c")
    assert subpath_source(str(vol), "rel", "v", "c") == str((vol / "inner").resolve())
    assert os.path.isdir(subpath_source(str(vol), "made/here", "v", "c"))


def test_etc_copy_is_an_allow_list(tmp_path: Path) -> None:
    host = tmp_path / "host"
    (host / "ssl" / "private").mkdir(parents=True)
    (host / "ssl" / "certs").mkdir()
    for name in ("passwd", "shadow", "ssl/private/key.pem", "ssl/certs/ca.pem", "nsswitch.conf"):
        (host / name).write_text("x")
    (host / "ssh").mkdir()
    etc = rootfs.prepare_etc(tmp_path / "images", host)
    assert sorted(str(p.relative_to(etc)) for p in etc.rglob("*")) == [
        "nsswitch.conf", "passwd", "ssl", "ssl/certs", "ssl/certs/ca.pem"]


def test_system_layout_mirrors_symlinks_and_dirs(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib").mkdir()
    assert rootfs.system_layout(str(tmp_path)) == ([("/bin", "usr/bin")], ["/usr", "/lib"])
