"""Cleanup helpers that need no root: process state, mount parsing, reports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8snet.lab.net import cleanup, nsutil
from k8snet.lab.polling import wait_exec


def _sleeper(arg: Path) -> subprocess.Popen:
    """A child that sleeps with ``arg`` on its command line, once the kernel shows it."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(arg)])
    wait_exec(child)
    return child


def test_dead_tells_live_from_zombie_and_gone() -> None:
    assert not cleanup._dead(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not cleanup._dead(child.pid):  # a zombie until reaped: counts as dead
        time.sleep(0.01)
    child.wait()
    assert cleanup._dead(child.pid)


def test_mounts_under_finds_proc() -> None:
    assert "/proc" in cleanup.mounts_under(Path("/proc"))
    assert cleanup.mounts_under(Path("/nonexistent-k8snet-dir")) == []


def test_namespace_listing_with_a_fake_netns_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nsutil, "NETNS_DIR", tmp_path)
    for name in ("k8snet-a-n0", "k8snet-a-wire", "k8snet-ab-n0", "other"):
        (tmp_path / name).touch()
    assert nsutil.list_netns("k8snet-a-") == ["k8snet-a-n0", "k8snet-a-wire"]
    # plain files (no nsfs mount) match no process
    assert cleanup.netns_processes("k8snet-a-") == {}
    monkeypatch.setattr(nsutil, "NETNS_DIR", tmp_path / "missing")
    assert nsutil.list_netns() == []


def test_report_lines() -> None:
    report = cleanup.CleanupReport(killed=[12], namespaces=["k8snet-x-n0"])
    assert report.ok
    assert report.removed == ["process 12", "netns k8snet-x-n0"]
    assert not cleanup.CleanupReport(survivors=[3]).ok


def test_container_processes_are_found_and_killed_by_their_pods_folder(tmp_path) -> None:
    """A container whose pod namespace lost its name is still found: its init names
    its spec under the lab's pods folder."""
    from k8snet.lab.net.cleanup import container_processes, kill_netns_processes

    pods = tmp_path / "state" / "pods"
    spec = pods / "uid-1" / "containers" / "web" / "spec.marshal"
    proc = _sleeper(spec)
    other = _sleeper(tmp_path / "elsewhere")
    try:
        found = container_processes(pods)
        # if it fails: whether the child was still alive, and what the kernel showed of it
        seen = Path(f"/proc/{proc.pid}/cmdline").read_bytes() if proc.poll() is None else b""
        assert proc.pid in found, f"child exited {proc.returncode}, /proc cmdline {seen!r}"
        assert other.pid not in found
        killed, survivors = kill_netns_processes("k8snet-tnomatch-", pods_dir=pods, timeout=5)
        assert proc.pid in killed and survivors == []
        assert proc.wait(timeout=5) == -9
        assert other.poll() is None
    finally:
        for p in (proc, other):
            p.kill()
            p.wait()


def test_names_file_under_reads_the_live_command_line(tmp_path: Path) -> None:
    """The check the kubelet makes before it kills a PID recorded before a crash."""
    child = _sleeper(tmp_path / "c" / "spec")
    try:
        assert cleanup.names_file_under(child.pid, tmp_path / "c")
        assert cleanup.names_file_under(child.pid, tmp_path)
        assert not cleanup.names_file_under(child.pid, tmp_path / "other")
        assert not cleanup.names_file_under(child.pid, tmp_path / "c" / "spe")  # whole names only
    finally:
        child.kill()
        child.wait()
    assert not cleanup.names_file_under(child.pid, tmp_path / "c")  # gone
