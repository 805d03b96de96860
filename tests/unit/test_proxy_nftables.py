"""Golden-text tests for the nftables renderer (K8SNET_UPDATE_GOLDEN=1 rewrites the files)."""

from __future__ import annotations

import os
import subprocess

import pytest

from k8snet.lab.proxy.model import build_model
from k8snet.lab.proxy.nftables import hash_and_truncate, nft_rule_count, render_nftables
from tests.unit._proxy_fixtures import CASES, NODE
from tests.unit.test_proxy_iptables import check_golden


def render(case: str) -> str:
    services, slices = CASES[case]()
    return render_nftables(build_model(services, slices, NODE.name), NODE)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    check_golden(f"{case}.nft", render(case))


def test_spread_is_one_numgen_rule() -> None:
    text = render("clusterip_three_endpoints")
    assert text.count("numgen random mod 3 vmap {") == 1
    assert text.startswith("add table ip kube-proxy\ndelete table ip kube-proxy\n")


def test_no_endpoints_go_to_reject_chain() -> None:
    assert "10.96.0.30 . tcp . 8080 : goto reject-chain," in render("no_endpoints")


def test_names_and_counts() -> None:
    assert hash_and_truncate("ns1/svc1/tcp/p80").endswith("-ns1/svc1/tcp/p80")
    assert len(hash_and_truncate("ns1/svc1/tcp/p80").split("-")[0]) == 8
    assert nft_rule_count(render("no_endpoints")) > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
@pytest.mark.parametrize("case", sorted(CASES))
def test_nft_accepts(case: str, netns: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", netns, "nft", "-c", "-f", "-"],
                          input=render(case), text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
