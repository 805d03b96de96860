"""rtnl: the pod set-up lines as rtnetlink requests give what ``ip -batch`` gives."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from k8snet.lab.net import nsutil, rtnl
from k8snet.lab.net.rtnl import RtnlError


def test_unknown_forms_are_refused_not_guessed() -> None:
    for line in ["addr add 10.0.0.1/32 dev lo label x", "route add 10.0.0.0/8 via 10.0.0.1", "link set lo down",
                 "netns add x"]:
        with pytest.raises(ValueError):
            rtnl._request(line.split(), ExitStack())


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    """Two scratch namespaces, each with a veth pair va / eth0 inside it."""
    names = [f"k8snet-t{uuid.uuid4().hex[:8]}" for _ in (1, 2)]
    for ns in names:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "eth0"], check=True)
    try:
        yield names[0], names[1]
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "delete", ns], check=True)


def _state(ns: str) -> tuple[str, str]:
    def ip(*args: str) -> str:
        return subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True).stdout
    addrs = [line.split()[1:4] for line in ip("-4", "-o", "addr").splitlines()]
    return repr(sorted(addrs)), ip("-d", "route", "show", "table", "all")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_same_result_as_ip_batch(netns_pair: tuple[str, str]) -> None:
    mine, ips = netns_pair
    # the forms podnet's node_side_commands and pod_side_commands produce
    lines = ["link set lo up", "addr add 10.244.2.7/32 dev eth0", "link set eth0 up",
             "route add 10.244.2.1 dev eth0 scope link", "route add default via 10.244.2.1 dev eth0",
             "addr add 10.244.2.1/32 dev va", "link set va up", "route replace 10.244.2.9/32 dev va scope link",
             "route replace 10.244.2.9/32 dev va scope link"]
    nsutil.run_in_netns_sync(mine, rtnl.apply, lines)
    nsutil.ip_batch_sync(lines, ips)
    assert _state(mine) == _state(ips)
    with pytest.raises(RtnlError, match="File exists"):
        nsutil.run_in_netns_sync(mine, rtnl.apply, ["addr add 10.244.2.7/32 dev eth0"])
    with pytest.raises(RtnlError, match='Cannot find device "nope"'):
        nsutil.run_in_netns_sync(mine, rtnl.apply, ["link set nope up"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_veth_pair_and_delete_as_ip_does(netns_pair: tuple[str, str]) -> None:
    """link add ... type veth peer ... netns: the same two ends as ``ip`` makes; link del."""
    mine, ips = netns_pair
    nsutil.run_in_netns_sync(mine, rtnl.apply, [f"link add e1 type veth peer name p1 netns {ips}"])
    nsutil.ip_batch_sync([f"link add e2 type veth peer name p2 netns {mine}"], ips)

    def links(ns: str) -> set[str]:
        out = subprocess.run(["ip", "-n", ns, "-o", "link"], check=True, capture_output=True, text=True).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    assert {"e1", "p2"} <= links(mine) and {"e2", "p1"} <= links(ips)
    with pytest.raises(RtnlError, match="File exists"):
        nsutil.run_in_netns_sync(mine, rtnl.apply, [f"link add e1 type veth peer name p3 netns {ips}"])
    with pytest.raises(RtnlError, match="Invalid"):
        nsutil.run_in_netns_sync(mine, rtnl.apply, ["link add e3 type veth peer name p3 netns k8snet-nope"])
    nsutil.run_in_netns_sync(mine, rtnl.apply, ["link del e1"])
    assert "e1" not in links(mine) and "p1" not in links(ips)  # a veth goes with its peer
    with pytest.raises(RtnlError, match='Cannot find device "e1"'):
        nsutil.run_in_netns_sync(mine, rtnl.apply, ["link del e1"])
