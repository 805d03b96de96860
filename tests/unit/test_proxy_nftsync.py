"""Partial nftables syncs: the transaction from one ruleset to the next gives the same table as a full reload."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from k8snet.lab.proxy.model import build_model
from k8snet.lab.proxy.nftables import NftablesRenderer, NftRuleset, nft_rule_count
from k8snet.lab.proxy.nftsync import nft_ruleset_count, nft_transaction
from tests.unit._proxy_fixtures import CASES, NODE


def ruleset(*cases: str) -> NftRuleset:
    services: list[dict] = []
    slices: list[dict] = []
    for case in cases:
        s, sl = CASES[case]()
        services += s
        slices += sl
    return NftablesRenderer(NODE).ruleset(build_model(services, slices, NODE.name))


def test_unchanged_is_empty() -> None:
    assert nft_transaction(ruleset("nodeport"), ruleset("nodeport")) == ""


def test_references_stay_valid_in_order() -> None:
    tx = nft_transaction(ruleset("nodeport"), ruleset("clusterip_three_endpoints")).splitlines()
    first = {kind: next(i for i, line in enumerate(tx) if line.startswith(kind))
             for kind in ("add chain", "add rule", "add element", "delete element", "delete chain")}
    assert first["add chain"] < first["add rule"] < first["add element"]
    assert first["delete element"] < first["delete chain"]


def test_changed_set_declaration_needs_full_reload() -> None:
    old, new = ruleset("session_affinity"), ruleset("session_affinity")
    name = next(n for n in new.sets if n.startswith("affinity-"))
    new.sets[name] = new.sets[name].replace("timeout 10800s", "timeout 60s")
    assert nft_transaction(old, new) is None


def test_count_matches_text() -> None:
    rs = ruleset("kube_dns", "loadbalancer")
    assert nft_ruleset_count(rs) == nft_rule_count(rs.text())


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



# (before, after) as fixture cases; () is no services at all. Covers services
# appearing and going, endpoints changing, affinity sets, node ports and the
# no-endpoint maps.
TRANSITIONS = [
    ((), ("kube_dns", "nodeport")),
    (("kube_dns", "nodeport"), ()),
    (("clusterip_three_endpoints",), ("session_affinity",)),
    (("session_affinity",), ("clusterip_three_endpoints",)),
    (("nodeport",), ("no_endpoints", "loadbalancer")),
    (("no_endpoints", "loadbalancer"), ("multiple_slices", "named_target_port")),
    (("multiple_slices", "kube_dns"), ("kube_dns",)),
]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
@pytest.mark.parametrize("before,after", TRANSITIONS)
def test_partial_equals_full_reload(netns: str, before: tuple, after: tuple) -> None:
    old, new = ruleset(*before), ruleset(*after)
    _apply(netns, new.text())
    want = _table(netns)
    _apply(netns, old.text())
    tx = nft_transaction(old, new)
    assert tx is not None
    if tx:
        _apply(netns, tx)
    assert _table(netns) == want
