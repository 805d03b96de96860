"""Partial iptables syncs: the ``--noflush`` input from one ruleset to the next gives the
same tables as a full restore."""

from __future__ import annotations

import os
import subprocess

import pytest

from k8snet.lab.proxy.iptables import IptablesRenderer, IptablesRuleset, rule_count
from k8snet.lab.proxy.iptsync import chain_edits, iptables_transaction
from k8snet.lab.proxy.model import build_model
from tests.unit._proxy_fixtures import CASES, HTTP, HTTP_EP, NODE, endpoint, endpoint_slice, service

FILLER = 40  # enough Services that a change edits KUBE-SERVICES instead of rewriting it


def filler(skip: int | None = None, *, endpoints: int = 1) -> tuple[list[dict], list[dict]]:
    """FILLER ClusterIP Services in namespace "fill" (without number ``skip``);
    the one numbered 7 has ``endpoints`` endpoints."""
    services, slices = [], []
    for i in range(FILLER):
        if i == skip:
            continue
        name = f"svc-{i:02d}"
        services.append(service(name, HTTP, ns="fill", cluster_ip=f"10.96.1.{i + 1}"))
        eps = [endpoint(f"10.244.0.{i + 1}")] + [endpoint(f"10.244.2.{k + 1}") for k in range(endpoints - 1 if i == 7 else 0)]
        slices.append(endpoint_slice(name, "f0001", HTTP_EP, eps, ns="fill"))
    return services, slices


def ruleset(*cases: str, fill: tuple[list[dict], list[dict]] | None = None) -> IptablesRuleset:
    services: list[dict] = []
    slices: list[dict] = []
    for case in cases:
        s, sl = CASES[case]()
        services += s
        slices += sl
    if fill:
        services += fill[0]
        slices += fill[1]
    return IptablesRenderer(NODE).ruleset(build_model(services, slices, NODE.name))


def test_unchanged_is_empty() -> None:
    assert iptables_transaction(ruleset("nodeport"), ruleset("nodeport")) == ""


def test_another_node_needs_full_restore() -> None:
    other = IptablesRenderer(NODE.__class__(name="other", ip="172.31.0.3")).ruleset([])
    assert iptables_transaction(ruleset(), other) is None


def test_adding_one_service_writes_only_its_chains() -> None:
    old, new = ruleset(fill=filler(skip=20)), ruleset(fill=filler())
    tx = iptables_transaction(old, new)
    assert tx is not None
    lines = tx.splitlines()
    # Its two chains, one jump inserted where a full restore puts it, nothing else.
    assert sorted(line.split()[0][:10] for line in lines if line.startswith(":")) == [":KUBE-SEP-", ":KUBE-SVC-"]
    inserts = [line for line in lines if line.startswith("-I ")]
    assert len(inserts) == 1 and inserts[0].startswith("-I KUBE-SERVICES 21 ")
    assert not [line for line in lines if line.startswith("-D ")]
    assert tx.count("*filter") == 0  # the filter table did not change
    assert new.rule_count() == rule_count(new.text())


def test_chain_edits() -> None:
    a, b, c, d = (f"-A X -j R{i}" for i in range(4))
    assert chain_edits("X", [a, b, c], [a, c]) == (["-D X -j R1"], [])
    assert chain_edits("X", [a, c, d], [a, b, c, d]) == ([], ["-I X 2 -j R1"])
    assert chain_edits("X", [a, b], [b, a]) is None  # kept rules reordered
    assert chain_edits("X", [a, a], [a]) is None  # -D by spec would be ambiguous


# -- against the kernel ------------------------------------------------------------

def _tables(ns: str) -> dict[str, dict[str, list[str]]]:
    """`iptables-save`, without counters and creation order: each table's chains and their rules."""
    out = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], check=True, capture_output=True,
                         text=True).stdout
    tables: dict[str, dict[str, list[str]]] = {}
    chains: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith("*"):
            chains = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            chains[line.split()[1]].append(line)
    return tables


def _restore(ns: str, text: str, *flags: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "-w", *flags], input=text, text=True,
                          capture_output=True)
    assert done.returncode == 0, done.stderr + text



# (before, after): (fixture cases, filler arguments or None). Covers Services appearing
# and going (alone and among many, so KUBE-SERVICES is edited in place), endpoints
# added and removed, affinity, node ports, external and load-balancer IPs, firewalls,
# traffic policies and the filter table's REJECT rules.
TRANSITIONS = [
    (((), None), (("kube_dns", "nodeport"), None)),
    ((("kube_dns", "nodeport"), None), ((), None)),
    ((("clusterip_three_endpoints",), None), (("session_affinity",), None)),
    ((("session_affinity",), None), (("clusterip_three_endpoints",), None)),
    ((("nodeport",), None), (("no_endpoints", "loadbalancer"), None)),
    ((("no_endpoints", "loadbalancer"), None), (("multiple_slices", "named_target_port"), None)),
    ((("loadbalancer_source_ranges",), None), (("internal_traffic_policy_local", "kube_dns"), None)),
    (((), {"skip": 20}), ((), {})),
    (((), {}), ((), {"skip": 0})),
    (((), {}), ((), {"skip": FILLER - 1})),
    (((), {}), ((), {"endpoints": 3})),
    (((), {"endpoints": 3}), ((), {"endpoints": 2})),
    ((("no_endpoints", "kube_dns"), {"skip": 5}), (("no_endpoints", "loadbalancer"), {"skip": 6})),
]


def _ruleset(spec: tuple[tuple[str, ...], dict | None]) -> IptablesRuleset:
    cases, fill = spec
    return ruleset(*cases, fill=filler(**fill) if fill is not None else None)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
@pytest.mark.parametrize("before,after", TRANSITIONS)
def test_partial_equals_full_restore(netns: str, before: tuple, after: tuple) -> None:
    old, new = _ruleset(before), _ruleset(after)
    _restore(netns, new.text())
    want = _tables(netns)
    _restore(netns, old.text())
    tx = iptables_transaction(old, new)
    assert tx is not None
    if tx:
        _restore(netns, tx, "--noflush")
    assert _tables(netns) == want
