"""The container runtime for real (root): busybox and nginx containers in a bare pod
network namespace, their logs, exec exit codes, and that nothing stays behind.

Drives the runtime directly (no API server); the Kubelet-with-API path is covered by
the lab-wide tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from k8snet.lab.images import catalog
from k8snet.lab.kubelet import containers, dnsfiles, runtime


def _mounts() -> list[str]:
    """The host's mounts, less network namespace handles (others' tests make those concurrently)."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if "/run/netns/" not in line]


def _netns_pids(netns: str) -> list[int]:
    target = os.stat(f"/run/netns/{netns}").st_ino
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == target:
                pids.append(int(pid))
        except OSError:
            pass
    return pids


@pytest.fixture
def netns():
    name = f"k8snet-tkl{os.getpid() % 100000}"
    before = _mounts()
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        for pid in _netns_pids(name):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], check=False)
    assert not Path(f"/run/netns/{name}").exists()
    assert _mounts() == before, "the host's mount table changed"


def _config(tmp_path: Path, image_ref: str, container: dict, hostname: str = "web") -> tuple[runtime.ContainerConfig, Path]:
    pod = {"metadata": {"name": hostname, "namespace": "demo"}, "spec": {"containers": [container]}}
    (tmp_path / "hosts").write_text(dnsfiles.hosts_file(pod, ["10.244.1.9"], "cluster.local"))
    (tmp_path / "resolv.conf").write_text(dnsfiles.resolv_conf(pod["spec"], "demo", cluster_domain="cluster.local",
                                                               dns_ip="10.96.0.10"))
    image = catalog.resolve(image_ref)
    cdir = tmp_path / container["name"]
    config = containers.build_config(
        pod, container, image, hostname=hostname, pod_env=["GREETING=hello"], images_dir=tmp_path / "images",
        container_dir=cdir, pod_files={"/etc/hosts": str(tmp_path / "hosts"),
                                       "/etc/resolv.conf": str(tmp_path / "resolv.conf")},
        volume_paths={})
    return config, cdir


def test_busybox_hostname_env_logs_exec(netns, tmp_path):
    async def scenario():
        config, cdir = _config(tmp_path, "busybox:1.37", {
            "name": "box", "image": "busybox:1.37",
            "command": ["sh", "-c", "hostname; printenv GREETING; echo oops >&2; cat /etc/resolv.conf; sleep 30"]},
            hostname="box")
        ct = await runtime.start_container(f"/run/netns/{netns}", config, cdir, tmp_path / "box.log")
        try:
            for _ in range(100):
                if b"options ndots:5" in (tmp_path / "box.log").read_bytes():
                    break
                await asyncio.sleep(0.02)
            text = runtime.render_log((tmp_path / "box.log").read_bytes()).decode()
            lines = text.splitlines()
            # stdout and stderr are separate pipes: only each stream's own order is fixed
            assert [line for line in lines if line != "oops"][:3] == \
                ["box", "hello", "search demo.svc.cluster.local svc.cluster.local cluster.local"]
            assert "oops" in lines
            proc = await runtime.exec_in(ct, ["sh", "-c", "echo $GREETING $HOSTNAME; exit 3"], stdin=False, tty=False)
            out, _ = await proc.communicate()
            assert (out, proc.returncode) == (b"hello box\n", 3)
        finally:
            code = await ct.stop(1)
        assert code != 0 and not ct.running

    asyncio.run(scenario())


def test_nginx_welcome_page(netns, tmp_path):
    async def scenario():
        config, cdir = _config(tmp_path, "nginx", {"name": "nginx", "image": "nginx"})
        ct = await runtime.start_container(f"/run/netns/{netns}", config, cdir, tmp_path / "nginx.log")
        try:
            for _ in range(100):
                r = subprocess.run(["ip", "netns", "exec", netns, "curl", "-s", "http://127.0.0.1:80/"],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    break
                await asyncio.sleep(0.02)
            assert "<title>Welcome to nginx!</title>" in r.stdout
            await asyncio.sleep(0.1)
            assert b'"GET / HTTP/1.1" 200 615' in runtime.render_log((tmp_path / "nginx.log").read_bytes())
        finally:
            assert await ct.stop(5) == 0  # nginx exits cleanly on SIGTERM

    asyncio.run(scenario())


def test_missing_command_is_a_start_error(netns, tmp_path):
    async def scenario():
        config, cdir = _config(tmp_path, "busybox", {"name": "x", "image": "busybox", "command": ["nope"]})
        with pytest.raises(runtime.ContainerStartError) as err:
            await runtime.start_container(f"/run/netns/{netns}", config, cdir, tmp_path / "x.log")
        assert err.value.reason == "StartError"
        assert err.value.message == 'exec: "nope": executable file not found in $PATH'

    asyncio.run(scenario())
