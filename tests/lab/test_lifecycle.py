"""`k8snet lab up|down`: Ready, side by side, and nothing left behind — also after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from k8snet.lab import lifecycle
from k8snet.lab.config import LabConfig

from .hoststate import host_snapshot, lab_leftovers


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8snet", "lab", *args], capture_output=True, text=True, timeout=180)


def test_up_down_leaves_host_as_it_was(state_root):
    name = f"lc{os.getpid() % 10000}"
    before = host_snapshot(name)
    try:
        up = _cli("up", "--name", name, "--nodes", "2")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Ready" in up.stdout and "KUBECONFIG=" in up.stdout
        st = lifecycle.status(name)
        assert st.phase == "Ready"
        assert st.kubeconfig is not None and (st.kubeconfig.stat().st_mode & 0o777) == 0o600
        assert _cli("status", "--name", name).returncode == 0
        assert "client-certificate-data" in _cli("kubeconfig", "--name", name).stdout
        assert f"kn{name}" in host_snapshot(name)["links"], "the lab's one host veth"
    finally:
        down = _cli("down", "--name", name)
    assert down.returncode == 0, down.stdout + down.stderr
    assert lab_leftovers(name) == {}
    assert host_snapshot(name) == before
    assert not (state_root / name).exists()


def test_up_after_supervisor_sigkill_cleans_the_stale_lab(state_root):
    name = f"cr{os.getpid() % 10000}"
    before = host_snapshot(name)
    try:
        st = lifecycle.up(LabConfig(name=name, nodes=2))
        os.kill(st.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while lifecycle.status(name).phase != "Crashed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lifecycle.status(name).phase == "Crashed"
        assert lab_leftovers(name), "pods and namespaces outlive a killed supervisor until cleanup"
        st = lifecycle.up(LabConfig(name=name, nodes=2))
        assert st.phase == "Ready"
    finally:
        lifecycle.down(name)
    assert lab_leftovers(name) == {}
    assert host_snapshot(name) == before


def test_two_labs_side_by_side(state_root):
    a, b = f"a{os.getpid() % 10000}", f"b{os.getpid() % 10000}"
    try:
        sa = lifecycle.up(LabConfig(name=a, nodes=1))
        sb = lifecycle.up(LabConfig(name=b, nodes=1))
        assert sa.server != sb.server
        assert lifecycle.status(a).phase == lifecycle.status(b).phase == "Ready"
        # Each lab has its own node network on the host.
        assert lifecycle.load_config(a).node_cidr != lifecycle.load_config(b).node_cidr
        lifecycle.down(a)
        assert lab_leftovers(a) == {}
        assert lifecycle.status(b).phase == "Ready", "stopping one lab must not touch the other"
    finally:
        lifecycle.down(a)
        lifecycle.down(b)
    assert lab_leftovers(b) == {}

