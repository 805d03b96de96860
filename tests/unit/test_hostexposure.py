"""Host exposure without root: the host link's plan, the pod->host guard's rules, the
LoadBalancer controller's decisions (and the controller against a real in-process
ApiCore), the announcer's election and ARP frame, and the nodes' addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from pathlib import Path
from typing import Any

import pytest

from k8snet.lab.api.admission import Admission
from k8snet.lab.api.core import ApiCore
from k8snet.lab.config import LabConfig
from k8snet.lab.controllers import loadbalancer as lb
from k8snet.lab.kubelet.kubelet import node_status
from k8snet.lab.net import guard, hostlink, lbannounce
from k8snet.lab.pki import Pki
from k8snet.lab.store import Store

net = ipaddress.ip_network


@pytest.fixture
def cfg(tmp_path: Path) -> LabConfig:
    return LabConfig(name="abcdefghijkl", nodes=3, state_dir=tmp_path)


# -- address plan and host link ---------------------------------------------------

def test_address_plan_keeps_host_wire_nodes_and_pool_apart(cfg: LabConfig) -> None:
    assert cfg.host_ip == "172.31.0.1"
    assert cfg.wire_gateway_ip == "172.31.0.254"
    assert cfg.host_ifname == "knabcdefghijkl" and len(cfg.host_ifname) <= 15
    pool = cfg.loadbalancer_pool
    assert (pool[0], pool[-1], len(pool)) == ("172.31.0.200", "172.31.0.250", 51)
    others = {cfg.host_ip, cfg.wire_gateway_ip} | {cfg.node_ip(i) for i in range(20)}
    assert not others & set(pool)


def test_host_link_commands(cfg: LabConfig) -> None:
    host, wire = hostlink.host_commands(cfg, "wire")
    assert host == [
        "link add knabcdefghijkl type veth peer name host netns k8snet-abcdefghijkl-wire",
        "link set knabcdefghijkl addrgenmode none",
        "addr add 172.31.0.1/24 dev knabcdefghijkl",
        "link set knabcdefghijkl up",
    ]
    assert wire == ["link set host master wire up"]


def test_pick_node_cidr_takes_the_configured_one_when_free() -> None:
    assert hostlink.pick_node_cidr("172.31.0.0/24", [net("192.0.2.0/24")]) == "172.31.0.0/24"


def test_pick_node_cidr_skips_networks_in_use() -> None:
    taken = [net("172.31.0.0/24"), net("172.31.1.1/32"), net("172.31.2.0/23")]
    assert hostlink.pick_node_cidr("172.31.0.0/24", taken) == "172.31.4.0/24"
    # a broader route covering the next ones counts too
    assert hostlink.pick_node_cidr("172.31.0.0/24", [net("172.31.0.0/22")]) == "172.31.4.0/24"


def test_pick_node_cidr_wraps_and_gives_up() -> None:
    assert hostlink.pick_node_cidr("172.31.255.0/24", [net("172.31.255.0/24")]) == "172.31.0.0/24"
    with pytest.raises(RuntimeError, match="no free /24"):
        hostlink.pick_node_cidr("172.31.0.0/24", [net("172.31.0.0/16")])


def test_other_labs_networks_read_saved_configs(tmp_path: Path) -> None:
    for name, cidr in (("me", "172.31.0.0/24"), ("other", "172.31.7.0/24")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(f'{{"name": "{name}", "node_cidr": "{cidr}"}}')
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    assert hostlink.other_labs_networks("me", tmp_path) == [net("172.31.7.0/24")]


# -- guard -------------------------------------------------------------------------

def test_guard_rejects_new_pod_connections_to_the_host_only(cfg: LabConfig) -> None:
    text = guard.guard_ruleset(cfg)
    assert text.startswith("add table ip k8snet-guard\ndelete table ip k8snet-guard\n")
    assert "type filter hook forward priority filter; policy accept;" in text
    match = "ip saddr 10.244.0.0/16 ip daddr 172.31.0.1 ct state != { established, related }"
    assert f"{match} meta l4proto tcp counter reject with tcp reset" in text
    assert f"{match} counter reject with icmp type admin-prohibited" in text


# -- LoadBalancer decisions -------------------------------------------------------

def svc(name: str = "web", type_: str = "LoadBalancer", ips: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
    status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]} if ips else {}}
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": "7"},
            "spec": {"type": type_, **spec}, "status": status}


POOL = [f"172.31.0.{i}" for i in range(200, 251)]


def test_wants_load_balancer() -> None:
    assert lb.wants_load_balancer(svc())
    assert not lb.wants_load_balancer(svc(type_="NodePort"))
    assert not lb.wants_load_balancer(svc(loadBalancerClass="example.com/other"))
    deleting = svc()
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert not lb.wants_load_balancer(deleting)


def test_choose_ip_lowest_free_then_keeps_it() -> None:
    assert lb.choose_ip(svc(), POOL, {"172.31.0.200", "172.31.0.202"}) == "172.31.0.201"
    assert lb.choose_ip(svc(ips=("172.31.0.210",)), POOL, {"172.31.0.200"}) == "172.31.0.210"
    # an address another Service holds is not kept
    assert lb.choose_ip(svc(ips=("172.31.0.210",)), POOL, {"172.31.0.210"}) == "172.31.0.200"


def test_choose_ip_honours_load_balancer_ip() -> None:
    assert lb.choose_ip(svc(loadBalancerIP="172.31.0.230"), POOL, set()) == "172.31.0.230"
    moved = svc(ips=("172.31.0.200",), loadBalancerIP="172.31.0.231")
    assert lb.choose_ip(moved, POOL, set()) == "172.31.0.231"
    with pytest.raises(lb.AllocationError, match="not in the lab's pool 172.31.0.200-172.31.0.250"):
        lb.choose_ip(svc(loadBalancerIP="10.0.0.1"), POOL, set())
    with pytest.raises(lb.AllocationError, match="already in use"):
        lb.choose_ip(svc(loadBalancerIP="172.31.0.230"), POOL, {"172.31.0.230"})
    with pytest.raises(lb.AllocationError, match="no free address"):
        lb.choose_ip(svc(), POOL[:2], set(POOL[:2]))


def test_patches() -> None:
    assert lb.status_patch("172.31.0.200") == {
        "status": {"loadBalancer": {"ingress": [{"ip": "172.31.0.200", "ipMode": "VIP"}]}}}
    assert lb.status_patch(None) == {"status": {"loadBalancer": {"ingress": None}}}
    s = svc()
    s["metadata"]["finalizers"] = ["example.com/keep"]
    assert lb.finalizers_patch(s, add=True)["metadata"] == {
        "finalizers": ["example.com/keep", lb.FINALIZER], "resourceVersion": "7"}
    s["metadata"]["finalizers"] = [lb.FINALIZER]
    assert lb.finalizers_patch(s, add=False)["metadata"]["finalizers"] is None


# -- announcer ------------------------------------------------------------------

def slice_(svc_name: str, *nodes_ready: tuple[str, bool]) -> dict[str, Any]:
    return {"metadata": {"name": f"{svc_name}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "endpoints": [{"addresses": [f"10.244.{i}.2"], "nodeName": n, "conditions": {"ready": r}}
                          for i, (n, r) in enumerate(nodes_ready)]}


NODES = ["lab-control-plane", "lab-worker", "lab-worker2"]


def test_election_is_stable_and_spreads() -> None:
    order = lbannounce.election_order("172.31.0.200", NODES)
    assert sorted(order) == sorted(NODES)
    assert lbannounce.election_order("172.31.0.200", list(reversed(NODES))) == order
    winners = {lbannounce.election_order(ip, NODES)[0] for ip in POOL}
    assert len(winners) > 1


def test_assignments_cluster_and_local_policies() -> None:
    cluster = svc("a", ips=("172.31.0.200",))
    local = svc("b", ips=("172.31.0.201",), externalTrafficPolicy="Local")
    no_local = svc("c", ips=("172.31.0.202",), externalTrafficPolicy="Local")
    foreign = svc("d", ips=("172.31.0.203",), loadBalancerClass="example.com/x")
    outside = svc("e", ips=("203.0.113.9",))
    slices = [slice_("b", ("lab-worker2", True), ("lab-worker", False)), slice_("c", ("lab-worker", False))]
    got = lbannounce.assignments([cluster, local, no_local, foreign, outside], slices, NODES, POOL)
    assert set(got) == {"172.31.0.200", "172.31.0.201"}
    assert got["172.31.0.200"][0] == lbannounce.election_order("172.31.0.200", NODES)[0]
    assert got["172.31.0.201"][0] == "lab-worker2"  # the only node with a ready local endpoint


def test_garp_frame() -> None:
    mac = bytes.fromhex("0a0b0c0d0e0f")
    frame = lbannounce.garp_frame(mac, "172.31.0.200")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    assert frame[20:22] == b"\x00\x01"  # request
    assert frame[28:32] == frame[38:42] == bytes([172, 31, 0, 200])  # sender = target


# -- nodes ------------------------------------------------------------------------

def test_nodes_report_internal_and_external_ip(cfg: LabConfig) -> None:
    addrs = node_status(cfg, 1, "2025-01-01T00:00:00Z")["addresses"]
    assert {"type": "InternalIP", "address": "172.31.0.3"} in addrs
    assert {"type": "ExternalIP", "address": "172.31.0.3"} in addrs


# -- the controller against a real ApiCore -----------------------------------------------

def test_controller_allocates_releases_and_records_events(tmp_path: Path) -> None:
    config = LabConfig(name="lbtest", state_dir=tmp_path)
    pki = Pki(config.pki_dir)
    pki.create(server_ips=["127.0.0.1"], server_names=["localhost"])
    store = Store(config.db_path)
    core = ApiCore(config, store, Admission(config, lambda key: store.list(key)[0]), pki)

    async def until(check, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = await check()
            if got:
                return got
            assert time.monotonic() < deadline, f"not within {timeout}s: {check.__name__}"
            await asyncio.sleep(0.02)

    def body(name: str, type_: str = "LoadBalancer", **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": type_, "selector": {"app": name}, **spec,
                         "ports": [{"name": "http", "port": 8080, "targetPort": 80}]}}

    async def ingress(name: str) -> list[str]:
        try:
            return lb.ingress_ips(await core.get("services", "default", name))
        except Exception:
            return []

    async def main() -> None:
        await core.create("namespaces", None, {"metadata": {"name": "default"}})
        controller = lb.LoadBalancerController(core, config)
        # Which keys the controller has finished with, so the test can wait for the
        # Service it must leave alone instead of sleeping.
        reconciled: set[tuple[str, str]] = set()
        reconcile = controller.reconcile

        async def recording(key: Any) -> None:
            await reconcile(key)
            reconciled.add(key)
        controller.reconcile = recording  # type: ignore[method-assign]
        task = asyncio.create_task(controller.run())
        try:
            t0 = time.monotonic()
            await core.create("services", "default", body("a"))
            assert await until(lambda: ingress("a")) == ["172.31.0.200"]
            assert time.monotonic() - t0 < 1.0
            a = await core.get("services", "default", "a")
            assert a["metadata"]["finalizers"] == [lb.FINALIZER]
            assert a["status"]["loadBalancer"]["ingress"] == [{"ip": "172.31.0.200", "ipMode": "VIP"}]
            await core.create("services", "default", body("b", loadBalancerIP="172.31.0.240"))
            await core.create("services", "default", body("c"))
            await core.create("services", "default", body("other", loadBalancerClass="example.com/lb"))
            assert await until(lambda: ingress("b")) == ["172.31.0.240"]
            assert await until(lambda: ingress("c")) == ["172.31.0.201"]
            # back to ClusterIP: released, finalizer gone; the address is free again
            await core.patch("services", "default", "a", {"spec": {"type": "ClusterIP"}})

            async def released() -> bool:
                s = await core.get("services", "default", "a")
                return not lb.ingress_ips(s) and not s["metadata"].get("finalizers")
            await until(released)
            await core.create("services", "default", body("d"))
            assert await until(lambda: ingress("d")) == ["172.31.0.200"]
            # deleting waits for the release, then the Service goes
            await core.delete("services", "default", "d")

            async def gone() -> bool:
                return "d" not in {s["metadata"]["name"] for s in (await core.list("services", "default"))["items"]}
            await until(gone)

            async def other_looked_at() -> bool:
                return ("default", "other") in reconciled and len(controller.queue) == 0
            await until(other_looked_at)
            assert await ingress("other") == []
            events = (await core.list("events", "default"))["items"]
            reasons = {(e["involvedObject"]["name"], e["reason"]) for e in events}
            assert {("a", "EnsuringLoadBalancer"), ("a", "EnsuredLoadBalancer"), ("a", "Type"),
                    ("a", "DeletingLoadBalancer"), ("a", "DeletedLoadBalancer"),
                    ("d", "DeletedLoadBalancer")} <= reasons
            assert not any(name == "other" for name, _ in reasons)
            assert all(e["source"]["component"] == "service-controller" for e in events)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        store.close()
