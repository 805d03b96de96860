"""The lab's network plumbing on a real kernel (root): nodes, pods, routing, cleanup.

Each test builds its own small lab network (no API server) named ``tnet<pid>``,
so its namespaces are ``k8snet-tnet<pid>-*``; the fixture removes them whatever
happens, and the host's firewall, interfaces, routes and sysctls are compared
before and after.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from k8snet.lab.config import LabConfig
from k8snet.lab.net import cleanup, hostlink, nsutil, podnet, topology
from tests.lab.hoststate import host_snapshot

SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen()
    print("ready", flush=True)
    while True:
        c, addr = s.accept()
        c.sendall(addr[0].encode())  # tell the client which source address arrived
        c.close()
""")
CLIENT = textwrap.dedent("""
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
        print(s.recv(100).decode())
""")
HOST_SYSCTLS = ["net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter",
                "net/ipv4/ping_group_range"]


def host_state(lab: str) -> dict[str, str]:
    state = host_snapshot(lab)
    state.update({k: Path("/proc/sys", k).read_text() for k in HOST_SYSCTLS})
    return state


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[LabConfig]:
    """A lab network (wire + 2 nodes) that is removed even when the test fails."""
    config = LabConfig(name=f"tnet{os.getpid() % 10_000_000}", nodes=2, state_dir=tmp_path / "state")
    cleanup.cleanup_lab(config)  # leftovers of an earlier run with the same pid
    before = host_state(config.name)
    config = hostlink.with_free_node_cidr(config)  # other labs may hold 172.31.0.0/24
    try:
        asyncio.run(topology.create_lab_network(config))
        yield config
    finally:
        report = cleanup.cleanup_lab(config)
        assert report.ok, report
        assert cleanup.leftovers(config.netns_prefix) == []
        assert host_state(config.name) == before


def ip(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", netns, *args], capture_output=True, text=True, check=True).stdout


def in_netns(netns: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net={nsutil.netns_path(netns)}", *argv]


def start_server(netns: str, host: str, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(in_netns(netns, sys.executable, "-c", SERVER, host, str(port)),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def client_seen_as(netns: str, ip: str, port: int) -> str:
    """Connects from ``netns`` to ip:port; returns the source address the server saw."""
    res = subprocess.run(in_netns(netns, sys.executable, "-c", CLIENT, ip, str(port)),
                         capture_output=True, text=True, timeout=15)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


async def add_pods(config: LabConfig, spec: list[tuple[int, str]]) -> list[podnet.PodNetwork]:
    nodes = {i: podnet.NodeNetwork(config, i) for i in range(config.nodes)}
    return list(await asyncio.gather(*(nodes[i].add_pod(uid) for i, uid in spec)))


def test_nodes_are_wired(cfg: LabConfig) -> None:
    assert nsutil.list_netns(cfg.netns_prefix) == sorted(topology.lab_netns_names(cfg))
    prefix = cfg.node_cidr.split("/")[1]
    addrs = ip(cfg.node_netns(1), "-o", "-4", "addr", "show", "dev", "eth0")
    assert f"{cfg.node_ip(1)}/{prefix}" in addrs
    routes = ip(cfg.node_netns(1), "route", "show")
    assert f"10.244.0.0/24 via {cfg.node_ip(0)} dev eth0" in routes
    assert f"default via {cfg.wire_gateway_ip} dev eth0" in routes
    # The host's one veth: its address and the connected route, no IPv6 link-local.
    host = subprocess.run(["ip", "-o", "addr", "show", "dev", cfg.host_ifname], capture_output=True,
                          text=True, check=True).stdout
    assert f"inet {cfg.host_ip}/{prefix}" in host and "inet6" not in host
    assert " host@" in ip(cfg.wire_netns, "-o", "link", "show", "master", "wire")
    assert nsutil.read_sysctl_sync(cfg.node_netns(0), "net.ipv4.ip_forward") == "1"
    assert nsutil.read_sysctl_sync(cfg.node_netns(0), "net.ipv4.conf.all.rp_filter") == "0"
    bridge = ip(cfg.wire_netns, "-o", "link", "show", "master", "wire")
    assert " n0@" in bridge and " n1@" in bridge
    with pytest.raises(nsutil.NetError, match="already has network namespaces"):
        asyncio.run(topology.create_lab_network(cfg))


def test_pod_to_pod_across_nodes_and_on_one_node_without_nat(cfg: LabConfig) -> None:
    a, b, c = asyncio.run(add_pods(cfg, [(0, "uid-a"), (1, "uid-b"), (0, "uid-c")]))
    # a and c are added concurrently on node 0: which one gets .2 is a race
    assert {a.ip, c.ip} == {"10.244.0.2", "10.244.0.3"} and b.ip == "10.244.1.2"
    assert nsutil.read_sysctl_sync(a.netns, "net.ipv4.ping_group_range").split() == ["0", "2147483647"]
    server_b = start_server(b.netns, "0.0.0.0", 8080)
    server_a = start_server(a.netns, "0.0.0.0", 8080)
    try:
        assert client_seen_as(a.netns, b.ip, 8080) == a.ip      # node 0 -> node 1
        assert client_seen_as(c.netns, a.ip, 8080) == c.ip      # same node
        assert client_seen_as(b.netns, a.ip, 8080) == b.ip      # node 1 -> node 0
    finally:
        stop(server_a)
        stop(server_b)


def test_pods_reach_the_wire_gateway_with_their_own_ip(cfg: LabConfig) -> None:
    """How pods reach the API server: a socket made in the wire namespace."""
    a, b = asyncio.run(add_pods(cfg, [(0, "uid-a"), (1, "uid-b")]))
    listener = nsutil.listen_socket_in_netns(cfg.wire_netns, cfg.wire_gateway_ip, 6443)
    listener.setblocking(True)
    listener.settimeout(10)
    try:
        for pod in (a, b):
            client = subprocess.Popen(in_netns(pod.netns, sys.executable, "-c", CLIENT, cfg.wire_gateway_ip, "6443"),
                                      stdout=subprocess.PIPE, text=True)
            conn, (peer, _) = listener.accept()
            with conn:
                conn.sendall(peer.encode())
            assert client.communicate(timeout=10)[0].strip() == pod.ip
    finally:
        listener.close()


def test_pods_get_no_route_out(cfg: LabConfig) -> None:
    (a,) = asyncio.run(add_pods(cfg, [(0, "uid-a")]))
    probe = "import socket\ntry:\n socket.create_connection(('192.0.2.1', 80), 3)\nexcept OSError as e: print(e.errno)"
    t0 = time.monotonic()
    res = subprocess.run(in_netns(a.netns, sys.executable, "-c", probe), capture_output=True, text=True, timeout=15)
    assert res.stdout.strip() in ("101", "113")  # ENETUNREACH / EHOSTUNREACH, at once
    assert time.monotonic() - t0 < 2.5


def test_remove_pod_is_idempotent_and_frees_the_ip(cfg: LabConfig) -> None:
    async def body() -> None:
        node = podnet.NodeNetwork(cfg, 1)
        first = await node.add_pod("uid-1")
        second = await node.add_pod("uid-2")
        await node.remove_pod("uid-1")
        await node.remove_pod("uid-1")
        assert not first.netns_path.exists()
        assert first.host_veth not in await nsutil.ip_batch(["link show"], node.node_netns)
        assert node.pod_ip("uid-1") is None
        third = await node.add_pod("uid-3")
        assert third.ip not in (first.ip, second.ip), "round-robin: the freed IP is not handed out at once"
        assert first.ip not in node.ipam.allocations()
        inode = third.netns_path.stat().st_ino
        assert await node.add_pod("uid-3") == third          # idempotent: same namespace
        assert third.netns_path.stat().st_ino == inode
        nsutil.delete_netns(third.netns)                      # a stale half-made pod...
        rebuilt = await node.add_pod("uid-3")                 # ...is rebuilt with its IP
        assert rebuilt.ip == third.ip and rebuilt.netns_path.stat().st_ino != inode
        ping = await asyncio.create_subprocess_exec(*in_netns(rebuilt.netns, "ping", "-c1", "-W2", second.ip),
                                                    stdout=subprocess.DEVNULL)
        assert await ping.wait() == 0
        # a restarted supervisor (new objects) sees the allocations on disk
        assert podnet.NodeNetwork(cfg, 1).pod_ip("uid-2") == second.ip

    asyncio.run(body())


def test_setup_is_fast(cfg: LabConfig) -> None:
    cleanup.cleanup_lab(cfg)
    t0 = time.monotonic()
    asyncio.run(topology.create_lab_network(cfg))
    assert time.monotonic() - t0 < 1.5

    async def one_pod() -> float:
        t = time.monotonic()
        await podnet.NodeNetwork(cfg, 0).add_pod("uid-fast")
        return time.monotonic() - t

    assert asyncio.run(one_pod()) < 0.5


def test_destroy_kills_pod_processes_and_leaves_nothing(cfg: LabConfig) -> None:
    a, b = asyncio.run(add_pods(cfg, [(0, "uid-a"), (1, "uid-b")]))
    sleeper = subprocess.Popen(in_netns(a.netns, "unshare", "--pid", "--fork", "--mount-proc", "sleep", "600"))
    time.sleep(0.2)
    assert any(f"in netns {a.netns}" in item for item in cleanup.leftovers(cfg.netns_prefix))
    report = asyncio.run(topology.destroy_lab_network(cfg))
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert report.ok and sleeper.pid in report.killed
    assert set(report.namespaces) == {a.netns, b.netns, *topology.lab_netns_names(cfg)}
    assert cleanup.leftovers(cfg.netns_prefix) == []
    assert not (cfg.state_dir / "ipam").exists()


CRASHING_SUPERVISOR = textwrap.dedent("""
    import asyncio, subprocess, sys
    from pathlib import Path
    from k8snet.lab.config import LabConfig
    from k8snet.lab.net import hostlink, podnet, topology

    async def main():
        cfg = hostlink.with_free_node_cidr(LabConfig(name=sys.argv[1], nodes=2, state_dir=Path(sys.argv[2])))
        await topology.create_lab_network(cfg)
        pod = await podnet.NodeNetwork(cfg, 1).add_pod("uid-orphan")
        subprocess.Popen(["nsenter", f"--net={pod.netns_path}", "sleep", "600"], start_new_session=True)
        print(pod.netns, flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
""")


def test_cleanup_after_the_supervisor_was_killed(tmp_path: Path) -> None:
    name = f"tcr{os.getpid() % 10_000_000}"
    before = host_state(name)
    state = tmp_path / "state"
    try:
        sup = subprocess.Popen([sys.executable, "-c", CRASHING_SUPERVISOR, name, str(state)],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
        assert sup.stdout is not None
        pod_netns = sup.stdout.readline().strip()
        assert pod_netns.startswith(f"k8snet-{name}-p")
        sup.kill()
        sup.wait()
        orphans = cleanup.netns_processes(f"k8snet-{name}-")
        assert list(orphans.values()) == [pod_netns]
        # from scratch: nothing but the lab's name and state folder
        report = cleanup.cleanup_lab(LabConfig(name=name, state_dir=state))
        assert report.ok and set(report.killed) == set(orphans)
        assert len(report.namespaces) == 4  # wire, 2 nodes, 1 pod
    finally:
        cleanup.cleanup_lab(LabConfig(name=name, state_dir=state))
    assert cleanup.leftovers(f"k8snet-{name}-") == []
    assert not (state / "ipam").exists()
    assert host_state(name) == before
