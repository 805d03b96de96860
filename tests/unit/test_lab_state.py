"""A lab's kept state without a running lab: the per-lab lock, file modes, what
``status`` says about a stopped / crashed / absent lab, and what a node restart does
to a pod's status (pure functions; no root needed)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from k8snet.lab import lifecycle, statelock
from k8snet.lab.config import LabConfig
from k8snet.lab.kubelet.status import ContainerRecord, seed_records, status_after_sandbox_loss
from k8snet.lab.supervisor import previous_port


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("K8SNET_STATE_ROOT", str(tmp_path))
    return tmp_path


# -- the lock ------------------------------------------------------------------------

def test_a_second_holder_waits_for_the_first(root):
    inside: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with statelock.lab_lock("a", timeout=5):
            inside.append("first in")
            first_in.set()
            time.sleep(0.3)
            inside.append("first out")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    with statelock.lab_lock("a", timeout=5):
        inside.append("second in")
    t.join()
    assert inside == ["first in", "first out", "second in"]


def test_other_labs_do_not_wait(root):
    with statelock.lab_lock("a", timeout=5):
        t0 = time.monotonic()
        with statelock.lab_lock("b", timeout=5):
            assert time.monotonic() - t0 < 0.5


def test_a_lock_held_by_another_process_times_out_naming_it(root):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from k8snet.lab import statelock\n"
        "with statelock.lab_lock('a', timeout=5):\n"
        "    print('held', flush=True); time.sleep(30)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(statelock.LabBusy, match=rf"pid {holder.pid}\) is working on lab 'a'"):
            with statelock.lab_lock("a", timeout=0.3):
                pass
    finally:
        holder.kill()
        holder.wait()
    with statelock.lab_lock("a", timeout=1):  # the kernel released it with the process
        pass


def test_the_lock_file_is_private_and_removed_with_its_lab(root):
    (root / "a").mkdir()
    with statelock.lab_lock("a", timeout=1):
        path = statelock.lock_path("a", root)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.exists(), "kept while the lab's folder exists"
    with statelock.lab_lock("a", timeout=1):
        (root / "a").rmdir()  # as down removes the state folder
    assert not path.exists()
    assert lifecycle.list_labs() == []


def test_a_waiter_on_a_removed_lock_file_locks_the_new_one(root):
    """The holder removes the file (its lab is gone) while another waits on it: the
    waiter must not think it holds the lock through the unlinked file."""
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with statelock.lab_lock("a", timeout=5):  # no folder "a": removed on release
            first_in.set()
            time.sleep(0.2)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    with statelock.lab_lock("a", timeout=5):
        order.append("second in")
        path = statelock.lock_path("a", root)
        # what this holder locked is the file at the path now
        assert path.exists() and path.read_text().strip() == str(os.getpid())
    t.join()
    assert order == ["first out", "second in"]


# -- file modes ----------------------------------------------------------------------

def test_state_files_lifecycle_writes_are_private(root):
    lab = LabConfig(name="p")
    lab.state_dir.mkdir(mode=0o700)
    lifecycle.save_config(lab)
    lifecycle._write_status(lab, "Stopped")
    for name in ("config.json", "status.json"):
        assert stat.S_IMODE((lab.state_dir / name).stat().st_mode) == 0o600, name


def test_restrict_modes_takes_group_and_other_permissions_off(root):
    folder = root / "old"
    (folder / "images" / "nginx").mkdir(parents=True)
    (folder / "store.sqlite").write_text("x")
    for path, mode in ((folder, 0o755), (folder / "images", 0o755), (folder / "store.sqlite", 0o644),
                       (folder / "images" / "nginx", 0o750)):
        path.chmod(mode)
    lifecycle.restrict_modes(folder)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}
    assert modes == {"old": 0o700, "images": 0o700, "nginx": 0o700, "store.sqlite": 0o600}


# -- status of a lab that does not run -------------------------------------------------

def _lab_with_state(root: Path, name: str, status: dict | None) -> LabConfig:
    lab = LabConfig(name=name)
    lab.state_dir.mkdir(mode=0o700)
    lifecycle.save_config(lab)
    lab.db_path.write_text("")
    lab.pki_dir.mkdir()
    (lab.pki_dir / "ca.crt").write_text("")
    if status is not None:
        (lab.state_dir / "status.json").write_text(json.dumps(status))
    return lab


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_no_folder_is_absent_not_stopped(root):
    st = lifecycle.status("nolab")
    assert st.phase == "Absent" and "lab up --name nolab" in st.message


def test_a_stopped_lab_says_start_brings_it_back(root):
    _lab_with_state(root, "kept", {"phase": "Stopped", "server": "https://127.0.0.1:40001",
                                   "nodes": ["kept-control-plane"], "proxy_mode": "iptables"})
    st = lifecycle.status("kept")
    assert st.phase == "Stopped" and st.pid is None
    assert "lab start --name kept" in st.message and "lab down --name kept" in st.message
    assert st.server == "https://127.0.0.1:40001" and st.details["nodes"] == ["kept-control-plane"]


def test_a_crashed_lab_with_its_state_says_start_brings_it_back(root):
    _lab_with_state(root, "boom", {"phase": "Ready", "pid": _dead_pid()})
    st = lifecycle.status("boom")
    assert st.phase == "Crashed" and "lab start --name boom" in st.message


def test_a_lab_after_a_failed_start_from_its_state_keeps_it(root):
    _lab_with_state(root, "bad", {"phase": "Failed", "message": "port in use"})
    st = lifecycle.status("bad")
    assert st.phase == "Failed" and st.message.startswith("port in use") and "lab start --name bad" in st.message


def test_up_refuses_another_shape_for_a_kept_lab(root):
    _lab_with_state(root, "kept", {"phase": "Stopped"})
    lifecycle.check_shape("kept", None, None)
    kept = LabConfig.nodes  # the shape the kept lab was saved with
    lifecycle.check_shape("kept", kept, "iptables")
    with pytest.raises(lifecycle.LabError, match=f"exists with {kept} nodes in iptables mode"):
        lifecycle.check_shape("kept", kept + 1, None)
    lifecycle.check_shape("fresh", 3, "nftables")  # nothing kept: any shape


def test_the_previous_api_port_comes_from_the_lab_kubeconfig(tmp_path):
    path = tmp_path / "kubeconfig"
    assert previous_port(path) == 0
    path.write_text("clusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:43067'}\n")
    assert previous_port(path) == 43067
    path.write_text("not: [a kubeconfig")
    assert previous_port(path) == 0


# -- a node restart, as the kubelet sees it ----------------------------------------------

def _running_pod() -> dict:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": "Always", "containers": [{"name": "nginx"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                       "hostIP": "172.31.0.2", "startTime": "2026-01-01T00:00:00Z", "qosClass": "BestEffort",
                       "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t0"},
                                      {"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}],
                       "containerStatuses": [{
                           "name": "nginx", "image": "docker.io/library/nginx:latest", "imageID": "id",
                           "ready": True, "started": True, "restartCount": 3, "containerID": "k8snet://abc",
                           "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}, "lastState": {}}]}}


def test_a_running_pod_loses_its_sandbox_like_after_a_node_reboot():
    new = status_after_sandbox_loss(_running_pod(), "2026-01-02T00:00:00Z")
    assert new is not None
    cs = new["containerStatuses"][0]
    assert cs["restartCount"] == 4 and not cs["ready"] and not cs["started"]
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["lastState"] == {"terminated": {"exitCode": 255, "reason": "Unknown", "containerID": "k8snet://abc",
                                              "startedAt": "2026-01-01T00:00:01Z", "finishedAt": "2026-01-02T00:00:00Z"}}
    assert "podIP" not in new and "podIPs" not in new, "the old address died with the sandbox"
    conditions = {c["type"]: c for c in new["conditions"]}
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    assert conditions["PodReadyToStartContainers"]["status"] == "False"
    assert conditions["PodScheduled"]["status"] == "True"
    assert new["phase"] == "Running" and new["qosClass"] == "BestEffort" and new["startTime"] == "2026-01-01T00:00:00Z"


def test_finished_and_never_started_pods_stay_as_they_are():
    done = _running_pod()
    done["status"]["phase"] = "Succeeded"
    assert status_after_sandbox_loss(done) is None
    assert status_after_sandbox_loss({"spec": {}, "status": {"phase": "Pending"}}) is None


def test_a_new_worker_keeps_counting_restarts():
    lost = status_after_sandbox_loss(_running_pod(), "2026-01-02T00:00:00Z")
    records = [ContainerRecord("nginx", "nginx"), ContainerRecord("other", "busybox")]
    seed_records(records, lost["containerStatuses"])
    assert records[0].restart_count == 4 and records[0].last_state["terminated"]["reason"] == "Unknown"
    assert records[1].restart_count == 0 and records[1].last_state == {}
