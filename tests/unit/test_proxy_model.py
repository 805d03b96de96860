"""Services + EndpointSlices -> the per-node model (kube-proxy's ServiceChangeTracker/EndpointSliceCache)."""

from __future__ import annotations

from k8snet.lab.proxy.conntrack import stale_udp_filters
from k8snet.lab.proxy.model import build_model
from tests.unit._proxy_fixtures import CASES, HTTP, HTTP_EP, NODE, OTHER_NODE, endpoint, endpoint_slice, service


def model(case: str):
    services, slices = CASES[case]()
    return build_model(services, slices, NODE.name)


def test_ports_resolve_by_name_per_endpoint() -> None:
    (sp,) = model("named_target_port")
    assert [str(e) for e in sp.endpoints] == ["10.244.0.11:8080", "10.244.1.12:9090"]


def test_multiple_slices_deduplicate_and_filter() -> None:
    (sp,) = model("multiple_slices")
    cat = sp.categorize()
    assert [e.ip for e in cat.cluster] == ["10.244.0.21", "10.244.1.21", "10.244.1.23"]
    assert len(sp.endpoints) == 5  # not-ready and terminating stay in the model, unused


def test_terminating_endpoints_used_only_when_none_ready() -> None:
    svc = service("t", HTTP)
    sl = endpoint_slice("t", "a", HTTP_EP, [endpoint("10.244.0.5", ready=False, serving=True, terminating=True),
                                            endpoint("10.244.0.6", ready=False, serving=False, terminating=True)])
    (sp,) = build_model([svc], [sl], NODE.name)
    assert [e.ip for e in sp.categorize().cluster] == ["10.244.0.5"]


def test_publish_not_ready_addresses() -> None:
    svc = service("p", HTTP, publishNotReadyAddresses=True)
    sl = endpoint_slice("p", "a", HTTP_EP, [endpoint("10.244.0.5", ready=False)])
    (sp,) = build_model([svc], [sl], NODE.name)
    assert sp.categorize().has_any


def test_headless_and_external_name_are_not_proxied() -> None:
    headless = service("h", HTTP, cluster_ip="None")
    ext = service("x", HTTP, type="ExternalName", cluster_ip="", externalName="example.com")
    assert build_model([headless, ext], [], NODE.name) == []


def test_session_affinity_default_timeout() -> None:
    (sp,) = build_model([service("s", HTTP, sessionAffinity="ClientIP")], [], NODE.name)
    assert sp.affinity_seconds == 10800


def test_local_policy_uses_local_endpoints() -> None:
    lb, local = model("loadbalancer")
    assert not lb.external_policy_local and local.external_policy_local
    cat = local.categorize()
    assert [e.ip for e in cat.local] == ["10.244.0.5"] and len(cat.cluster) == 2
    assert local.health_check_node_port == 32000 and local.load_balancer_ips == ("172.31.0.201",)


def test_internal_traffic_policy_local_without_local_endpoints() -> None:
    svc = service("i", HTTP, internalTrafficPolicy="Local")
    sl = endpoint_slice("i", "a", HTTP_EP, [endpoint("10.244.1.5", node=OTHER_NODE)])
    (sp,) = build_model([svc], [sl], NODE.name)
    cat = sp.categorize()
    assert cat.has_any and cat.local == () and cat.reachable == ()


def test_stale_udp_flows_for_removed_endpoint_and_revived_service() -> None:
    before = model("kube_dns")
    services, slices = CASES["kube_dns"]()
    slices[0]["endpoints"] = slices[0]["endpoints"][:1]  # 10.244.0.3 went away
    after = build_model(services, slices, NODE.name)
    assert stale_udp_filters(before, after) == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.0.3"]]
    # From no endpoints to some: flush what REJECT left behind.
    empty = [s for s in model("kube_dns")]
    services, slices = CASES["kube_dns"]()
    slices[0]["endpoints"] = []
    none = build_model(services, slices, NODE.name)
    assert stale_udp_filters(none, empty) == [["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"]]
    assert stale_udp_filters(empty, empty) == []


def test_model_builder_rebuilds_only_changed_services() -> None:
    import copy

    from k8snet.lab.proxy.model import ModelBuilder
    services, slices = [], []
    for case in ("kube_dns", "loadbalancer", "multiple_slices"):
        s, sl = CASES[case]()
        services += s
        slices += sl
    builder = ModelBuilder(NODE.name)
    first = builder.build(services, slices)
    assert first == build_model(services, slices, NODE.name)
    again = builder.build(services, slices)
    assert all(a is b for a, b in zip(first, again))  # reused, not rebuilt
    # One slice is replaced (as the informer does on MODIFIED): only its Service's entries are new.
    slices = copy.deepcopy(slices)
    changed = next(sl for sl in slices if sl["metadata"]["labels"]["kubernetes.io/service-name"] == "lb")
    changed["endpoints"] = changed["endpoints"][:1]
    builder.slice_event("MODIFIED", changed)
    third = builder.model()
    assert third == build_model(services, slices, NODE.name) and third != again
    assert {sp.name for a, sp in zip(again, third) if a is not sp} == {"lb"}


def test_model_builder_follows_events() -> None:
    from k8snet.lab.proxy.model import ModelBuilder
    services, slices = CASES["loadbalancer"]()
    builder = ModelBuilder(NODE.name)
    for sl in slices:  # slices before their Service, as two informers may deliver them
        builder.slice_event("ADDED", sl)
    assert builder.model() == []
    for svc in services:
        builder.service_event("ADDED", svc)
    assert builder.model() == build_model(services, slices, NODE.name)
    # A slice relabelled to the other Service moves its endpoints there.
    moved = {**slices[0], "metadata": {**slices[0]["metadata"],
                                        "labels": {"kubernetes.io/service-name": "lb-local"}}}
    builder.slice_event("MODIFIED", moved)
    assert builder.model() == build_model(services, [moved, slices[1]], NODE.name)
    builder.slice_event("DELETED", moved)
    builder.service_event("DELETED", services[0])
    assert builder.model() == build_model(services[1:], slices[1:], NODE.name)


def test_model_builder_keeps_the_order_through_bursts_and_single_changes() -> None:
    import random

    from k8snet.lab.proxy.model import RESORT_CHANGES, ModelBuilder

    def svc(i: int) -> dict:
        return service(f"s{i:03d}", HTTP, ns=f"ns{i % 3}", cluster_ip=f"10.96.2.{i}")

    every = [svc(i) for i in range(2 * RESORT_CHANGES)]
    shuffled = random.Random(7).sample(every, len(every))
    builder = ModelBuilder(NODE.name)
    live = shuffled[:RESORT_CHANGES + 10]  # a burst: sorted anew
    assert builder.build(live, []) == build_model(live, [], NODE.name)
    for new in shuffled[RESORT_CHANGES + 10:RESORT_CHANGES + 20]:  # one at a time: put in place
        live.append(new)
        builder.service_event("ADDED", new)
        assert builder.model() == build_model(live, [], NODE.name)
    for gone in (live[0], live[-1], live[len(live) // 2]):
        live.remove(gone)
        builder.service_event("DELETED", gone)
        assert builder.model() == build_model(live, [], NODE.name)
