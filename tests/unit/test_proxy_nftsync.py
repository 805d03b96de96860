"""Partial nftables syncs: the transaction from one table to the next gives the same table as a full reload."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from k8snet.lab.proxy.model import build_model
from k8snet.lab.proxy.nftables import NftablesRenderer, NftTable, nft_rule_count
from k8snet.lab.proxy.nftsync import nft_transaction
from tests.unit._netns import scratch_netns
from tests.unit._proxy_fixtures import CASES, NODE, endpoint

Objects = tuple[list[dict], list[dict]]


def _edit(case: str, change: Callable[[dict, list[dict]], None]) -> Callable[[], Objects]:
    """A fixture case with its (only) Service and its slices changed by ``change``."""
    def objects() -> Objects:
        services, slices = copy.deepcopy(CASES[case]())
        change(services[0], slices)
        return services, slices
    return objects


def _spec(**fields: Any) -> Callable[[dict, list[dict]], None]:
    return lambda svc, _: svc["spec"].update(fields)


# The same Services changed in place: what a partial sync meets most.
EDITS: dict[str, Callable[[], Objects]] = {
    "kube_dns_without_metrics": _edit("kube_dns", lambda svc, _: svc["spec"]["ports"].pop()),
    "kube_dns_udp_only": _edit("kube_dns", lambda svc, _: svc["spec"]["ports"].__delitem__(slice(1, None))),
    "kube_dns_other_ip": _edit("kube_dns", _spec(clusterIP="10.96.0.11", clusterIPs=["10.96.0.11"])),
    "three_endpoints_one_gone": _edit("clusterip_three_endpoints", lambda _, sl: sl[0]["endpoints"].pop(0)),
    "three_endpoints_one_more": _edit("clusterip_three_endpoints",
                                      lambda _, sl: sl[0]["endpoints"].append(endpoint("10.244.0.8"))),
    "three_endpoints_none_ready": _edit("clusterip_three_endpoints", lambda _, sl: [
        ep["conditions"].update(ready=False, serving=False) for ep in sl[0]["endpoints"]]),
    "three_endpoints_affinity": _edit("clusterip_three_endpoints", _spec(sessionAffinity="ClientIP")),
    "session_affinity_off": _edit("session_affinity", _spec(sessionAffinity="None")),
    "session_affinity_60s": _edit("session_affinity", _spec(
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})),
    "nodeport_local": _edit("nodeport", _spec(externalTrafficPolicy="Local")),
}


def _objects(*cases: str) -> Objects:
    services: list[dict] = []
    slices: list[dict] = []
    for case in cases:
        s, sl = {**CASES, **EDITS}[case]()
        services += s
        slices += sl
    return services, slices


def ruleset(*cases: str, renderer: NftablesRenderer | None = None) -> NftTable:
    """The table of these cases, from ``renderer`` (so made from its previous table) or a new one."""
    return (renderer or NftablesRenderer(NODE)).ruleset(build_model(*_objects(*cases), NODE.name))


def transition(before: tuple, after: tuple) -> tuple[NftTable, NftTable]:
    """Both tables from one renderer, as in a running proxy: the second knows what changed."""
    renderer = NftablesRenderer(NODE)
    return ruleset(*before, renderer=renderer), ruleset(*after, renderer=renderer)


def test_unchanged_is_empty() -> None:
    assert nft_transaction(ruleset("nodeport"), ruleset("nodeport")) == ""
    assert nft_transaction(*transition(("nodeport",), ("nodeport",))) == ""


def test_references_stay_valid_in_order() -> None:
    tx = nft_transaction(*transition(("nodeport",), ("clusterip_three_endpoints",)))
    assert tx
    lines = tx.splitlines()
    first = {kind: next(i for i, line in enumerate(lines) if line.startswith(kind))
             for kind in ("add chain", "add rule", "add element", "delete element", "delete chain")}
    assert first["add chain"] < first["add rule"] < first["add element"]
    assert first["delete element"] < first["delete chain"]


def test_changed_set_declaration_needs_full_reload() -> None:
    assert nft_transaction(*transition(("session_affinity",), ("session_affinity_60s",))) is None


def test_another_node_needs_full_reload() -> None:
    other = NftablesRenderer(NODE.__class__(name="other", ip="172.31.0.3")).ruleset([])
    assert nft_transaction(ruleset(), other) is None


def test_a_cluster_ip_stays_while_a_port_uses_it() -> None:
    tx = nft_transaction(*transition(("kube_dns",), ("kube_dns_without_metrics",)))
    assert tx and "cluster-ips" not in tx and "delete element ip kube-proxy service-ips { 10.96.0.10 . tcp . 9153 }" in tx
    tx = nft_transaction(*transition(("kube_dns",), ()))
    assert tx and "delete element ip kube-proxy cluster-ips { 10.96.0.10 }" in tx


def test_a_kept_chain_is_rewritten_only_if_its_rules_changed() -> None:
    tx = nft_transaction(*transition(("clusterip_three_endpoints",), ("three_endpoints_one_gone",)))
    assert tx
    flushed = [line.split()[-1] for line in tx.splitlines() if line.startswith("flush chain")]
    deleted = [line.split()[-1] for line in tx.splitlines() if line.startswith("delete chain")]
    # The service chain picks among two endpoints now; the gone endpoint's chain is
    # emptied and deleted; the other two endpoint chains are left alone.
    assert [c.split("-")[0] for c in flushed] == ["service", "endpoint"] and deleted == flushed[1:]
    assert "add chain" not in tx and "element" not in tx


def test_each_chain_belongs_to_one_fragment() -> None:
    """What nft_transaction relies on: a fragment's chains are its own, so comparing the
    fragments that changed says everything about the chains that changed."""
    table = ruleset(*CASES)
    owners: dict[str, int] = {}
    for fragment in table.fragments.values():
        for chain in fragment.chains:
            owners[chain] = owners.get(chain, 0) + 1
    assert owners and max(owners.values()) == 1
    assert not owners.keys() & table.skeleton.chains.keys()


# Every pair of tables below, as a running proxy would go from one to the other.
TRANSITIONS = [
    ((), ("kube_dns", "nodeport")),
    (("kube_dns", "nodeport"), ()),
    (("clusterip_three_endpoints",), ("session_affinity",)),
    (("session_affinity",), ("clusterip_three_endpoints",)),
    (("nodeport",), ("no_endpoints", "loadbalancer")),
    (("no_endpoints", "loadbalancer"), ("multiple_slices", "named_target_port")),
    (("multiple_slices", "kube_dns"), ("kube_dns",)),
    # A multi-port Service loses ports (its cluster IP stays) and gets them back.
    (("kube_dns", "nodeport"), ("kube_dns_without_metrics", "nodeport")),
    (("kube_dns",), ("kube_dns_udp_only",)),
    (("kube_dns_udp_only",), ("kube_dns",)),
    # A Service moves to another cluster IP (every port changes).
    (("kube_dns",), ("kube_dns_other_ip",)),
    # Endpoints go, come, stop being ready (service-ips -> no-endpoint-services).
    (("clusterip_three_endpoints",), ("three_endpoints_one_gone",)),
    (("three_endpoints_one_gone",), ("three_endpoints_one_more",)),
    (("clusterip_three_endpoints",), ("three_endpoints_none_ready",)),
    (("three_endpoints_none_ready",), ("clusterip_three_endpoints",)),
    # Affinity on and off: affinity sets declared and deleted.
    (("clusterip_three_endpoints",), ("three_endpoints_affinity",)),
    (("three_endpoints_affinity",), ("clusterip_three_endpoints",)),
    (("session_affinity",), ("session_affinity_off",)),
    (("session_affinity_off", "kube_dns"), ("session_affinity", "kube_dns_without_metrics")),
    # externalTrafficPolicy Local: a changed verdict for the node port (delete + add).
    (("nodeport",), ("nodeport_local",)),
    (("nodeport_local", "loadbalancer_source_ranges"), ("nodeport", "loadbalancer_source_ranges_no_endpoints")),
    (("internal_traffic_policy_local",), ("internal_traffic_policy_local", "loadbalancer")),
]


@pytest.mark.parametrize("before,after", TRANSITIONS)
def test_any_two_tables_give_the_same_transaction(before: tuple, after: tuple) -> None:
    """What changed is recorded on the way; tables of separate renderers, or not one
    right after the other, are compared fragment by fragment instead: same answer."""
    old, new = transition(before, after)
    tx = nft_transaction(old, new)
    assert nft_transaction(ruleset(*before), ruleset(*after)) == tx
    renderer = NftablesRenderer(NODE)
    skipped = [ruleset(*before, renderer=renderer), ruleset("loadbalancer", renderer=renderer),
               ruleset(*after, renderer=renderer), ruleset("kube_dns", renderer=renderer)]
    assert nft_transaction(skipped[0], skipped[2]) == tx


@pytest.mark.parametrize("before,after", TRANSITIONS)
def test_count_matches_text(before: tuple, after: tuple) -> None:
    for table in transition(before, after):
        assert table.rules == nft_rule_count(table.text()) == table.merged().count()


# -- against the kernel ------------------------------------------------------------

def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k != "handle"}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _table(ns: str) -> dict[str, Any]:
    """`nft -j list table`, without handles and creation order: what a packet sees."""
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "ip", "kube-proxy"],
                         check=True, capture_output=True, text=True).stdout
    chains: dict[str, list] = {}
    sets: dict[str, Any] = {}
    for item in json.loads(out)["nftables"]:
        kind, body = next(iter(item.items()))
        if kind == "chain":
            chains.setdefault(body["name"], [])
        elif kind == "rule":
            chains.setdefault(body["chain"], []).append(_strip(body["expr"]))
        elif kind in ("set", "map"):
            elems = sorted(json.dumps(e, sort_keys=True) for e in body.pop("elem", []))
            sets[body["name"]] = (_strip(body), elems)
    return {"chains": chains, "sets": sets}


def _apply(ns: str, text: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=text, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr + text



@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
@pytest.mark.parametrize("before,after", TRANSITIONS)
def test_partial_equals_full_reload(netns: str, before: tuple, after: tuple) -> None:
    old, new = transition(before, after)
    _apply(netns, new.text())
    want = _table(netns)
    _apply(netns, old.text())
    tx = nft_transaction(old, new)
    assert tx  # every transition changes something
    _apply(netns, tx)
    assert _table(netns) == want


# One proxy going through every state above in turn, each step a partial sync.
SERIES = [tables for pair in TRANSITIONS for tables in pair]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_a_series_of_partial_syncs_equals_full_reloads(netns: str) -> None:
    renderer = NftablesRenderer(NODE)
    applied = ruleset(*SERIES[0], renderer=renderer)
    _apply(netns, applied.text())
    with scratch_netns() as full:
        for cases in SERIES[1:]:
            new = ruleset(*cases, renderer=renderer)
            tx = nft_transaction(applied, new)
            assert tx is not None
            _apply(netns, tx)
            _apply(full, new.text())
            assert _table(netns) == _table(full), cases
            applied = new


def test_element_counts_follow_the_changes() -> None:
    renderer = NftablesRenderer(NODE)
    for cases in SERIES:
        table = ruleset(*cases, renderer=renderer)
        recounted = ruleset(*cases).element_counts()
        assert table.element_counts() == recounted
