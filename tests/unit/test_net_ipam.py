"""Pod IP allocation: lowest free from .2, persisted, never handed out twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from k8snet.lab.net.ipam import IpamStore, PoolExhausted, candidate_ips, next_free

CIDR = "10.244.1.0/24"


def test_candidates_skip_network_gateway_and_broadcast() -> None:
    ips = candidate_ips(CIDR)
    assert ips[0] == "10.244.1.2" and ips[-1] == "10.244.1.254" and len(ips) == 253


def test_next_free_searches_round_robin_after_the_last() -> None:
    assert next_free(CIDR, set()) == "10.244.1.2"
    assert next_free(CIDR, {"10.244.1.2", "10.244.1.4"}) == "10.244.1.3"
    assert next_free(CIDR, set(), after="10.244.1.7") == "10.244.1.8"
    assert next_free(CIDR, {"10.244.1.2"}, after="10.244.1.254") == "10.244.1.3"  # wraps
    with pytest.raises(PoolExhausted):
        next_free("10.0.0.0/30", {"10.0.0.2"})


def test_allocate_is_idempotent_and_release_frees(tmp_path: Path) -> None:
    store = IpamStore(tmp_path / "node0", CIDR)
    a = store.allocate("uid-a")
    b = store.allocate("uid-b")
    assert (a, b) == ("10.244.1.2", "10.244.1.3")
    assert store.allocate("uid-a") == a
    assert store.lookup("uid-b") == b
    assert store.release("uid-a") == [a]
    assert store.release("uid-a") == []          # idempotent
    assert store.lookup("uid-a") is None
    c = store.allocate("uid-c")
    assert c == "10.244.1.4", "a new pod never gets the address its predecessor just freed"
    assert store.allocations() == {c: "uid-c", b: "uid-b"}


def test_state_survives_a_new_store_object(tmp_path: Path) -> None:
    """A restarted supervisor sees the same allocations on disk."""
    IpamStore(tmp_path, CIDR).allocate("uid-a")
    again = IpamStore(tmp_path, CIDR)
    assert again.lookup("uid-a") == "10.244.1.2"
    assert again.allocate("uid-b") == "10.244.1.3"


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    store = IpamStore(tmp_path, CIDR)
    for i in range(3):
        store.allocate(f"u{i}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10.244.1.2", "10.244.1.3", "10.244.1.4", "last_reserved_ip"]


def test_concurrent_allocators_never_share_an_ip(tmp_path: Path) -> None:
    # Separate store objects, as separate processes would have.
    def alloc(i: int) -> str:
        return IpamStore(tmp_path, CIDR).allocate(f"uid-{i}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        ips = list(pool.map(alloc, range(100)))
    assert len(set(ips)) == 100
    assert set(ips) == set(candidate_ips(CIDR)[:100])


def test_pool_exhaustion(tmp_path: Path) -> None:
    store = IpamStore(tmp_path, "10.0.0.0/29")   # .2 .. .6
    for i in range(5):
        store.allocate(f"u{i}")
    with pytest.raises(PoolExhausted):
        store.allocate("one-too-many")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_claimed_names_the_addresses_only(tmp_path: Path) -> None:
    store = IpamStore(tmp_path / "node0", CIDR)
    assert store.claimed() == []  # no folder yet
    first, second = store.allocate("pod-a"), store.allocate("pod-b")
    (store.directory / ".claim-1-abc").write_text("pod-c\n")  # a claim being made
    (store.directory / "10.9.9.9").write_text("foreign\n")  # not of this CIDR
    assert sorted(store.claimed()) == sorted([first, second]) == sorted(store.allocations())
