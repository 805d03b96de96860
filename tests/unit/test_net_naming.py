"""Names and command lists of the lab network (pure functions, no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8snet.lab.config import LabConfig
from k8snet.lab.net import nsutil, podnet, topology


@pytest.fixture
def cfg(tmp_path: Path) -> LabConfig:
    return LabConfig(name="abcdefghijkl", nodes=3, state_dir=tmp_path)  # longest lab name


def test_pod_names_are_stable_short_and_distinct(cfg: LabConfig) -> None:
    ns = podnet.pod_netns_name(cfg, "0b6f3c2e-1111-4d2b-9a55-7c1e0a2b3c4d")
    assert ns == podnet.pod_netns_name(cfg, "0b6f3c2e-1111-4d2b-9a55-7c1e0a2b3c4d")
    assert ns.startswith(cfg.netns_prefix + "p")
    veth = podnet.host_veth_name("0b6f3c2e-1111-4d2b-9a55-7c1e0a2b3c4d")
    assert len(veth) <= 15 and veth.startswith("v")
    assert veth[1:] == ns[len(cfg.netns_prefix) + 1:]
    names = {podnet.pod_hash(f"uid-{i}") for i in range(5000)}
    assert len(names) == 5000
    with pytest.raises(ValueError):
        podnet.pod_hash("")


def test_check_ifname() -> None:
    assert nsutil.check_ifname("v0123456789abcd") == "v0123456789abcd"  # 15 chars
    for bad in ("", "v0123456789abcde", "a/b", "a b"):
        with pytest.raises(ValueError):
            nsutil.check_ifname(bad)


def test_sysctl_path_only_allows_net_keys() -> None:
    assert nsutil.sysctl_path("net.ipv4.ip_forward") == Path("/proc/sys/net/ipv4/ip_forward")
    for bad in ("kernel.hostname", "net.ipv4/../../kernel", "net..x"):
        with pytest.raises(ValueError):
            nsutil.sysctl_path(bad)


def test_wire_commands(cfg: LabConfig) -> None:
    cmds = topology.wire_commands(cfg)
    assert "addr add 172.31.0.254/24 dev wire" in cmds  # .1 is the host's
    assert "link add n2 type veth peer name eth0 netns k8snet-abcdefghijkl-n2" in cmds
    assert "link set n2 master wire up" in cmds
    # routes back to every pod CIDR: pods keep their own source IP when talking to the API
    assert [c for c in cmds if c.startswith("route")] == [
        "route add 10.244.0.0/24 via 172.31.0.2 dev wire",
        "route add 10.244.1.0/24 via 172.31.0.3 dev wire",
        "route add 10.244.2.0/24 via 172.31.0.4 dev wire",
    ]
    # every veth is created after the bridge it is enslaved to
    assert cmds.index("link add wire type bridge forward_delay 0") < cmds.index("link set n0 master wire up")


def test_node_commands_route_to_every_other_node(cfg: LabConfig) -> None:
    cmds = topology.node_commands(cfg, 1)
    assert "addr add 172.31.0.3/24 dev eth0" in cmds
    assert [c for c in cmds if c.startswith("route")] == [
        "route add 10.244.0.0/24 via 172.31.0.2 dev eth0",
        "route add 10.244.2.0/24 via 172.31.0.4 dev eth0",
        "route add default via 172.31.0.254 dev eth0",
    ]
    assert cmds.index("link set eth0 up") < cmds.index("route add default via 172.31.0.254 dev eth0")


def test_pod_commands_are_ptp_style(cfg: LabConfig) -> None:
    uid = "pod-uid"
    veth = podnet.host_veth_name(uid)
    # run inside the new pod namespace: eth0 there, its peer straight into the node's
    assert podnet.create_commands(cfg, 2, uid) == [
        f"link add eth0 type veth peer name {veth} netns k8snet-abcdefghijkl-n2",
    ]
    assert podnet.node_side_commands(cfg, 2, uid, "10.244.2.7") == [
        f"addr add 10.244.2.1/32 dev {veth}",
        f"link set {veth} up",
        f"route replace 10.244.2.7/32 dev {veth} scope link",
    ]
    pod = podnet.pod_side_commands(cfg, 2, "10.244.2.7")
    assert "addr add 10.244.2.7/32 dev eth0" in pod
    assert pod[-2:] == ["route add 10.244.2.1 dev eth0 scope link", "route add default via 10.244.2.1 dev eth0"]
    assert pod.index("link set eth0 up") < pod.index("route add 10.244.2.1 dev eth0 scope link")


def test_node_network_rejects_bad_index(cfg: LabConfig) -> None:
    with pytest.raises(ValueError):
        podnet.NodeNetwork(cfg, 3)
    net = podnet.NodeNetwork(cfg, 0)
    assert net.pod_netns("x") == podnet.pod_netns_name(cfg, "x")
    assert net.gateway == "10.244.0.1"
    assert net.pod_ip("x") is None
