"""Pod IP allocation for one node's pod CIDR, persisted as one file per address.

Like the CNI ``host-local`` IPAM plugin that kindnet uses: the directory holds a file
named after each allocated address whose content is the owner (the pod UID). A file
is claimed with ``link(2)`` of a fully written temporary file, which fails if the
name exists, so two allocators (two coroutines, or a restarted supervisor next to
stale state) can never hand out the same address, and a crash never leaves a
half-written claim.

Like host-local, allocation is round-robin: the search starts after the last
address handed out (kept in ``last_reserved_ip``), so a pod that replaces a
deleted one gets a new address rather than its predecessor's — stale connections
and conntrack entries never reach the wrong pod.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from collections.abc import Collection
from pathlib import Path

from k8snet.lab.config import LabConfig


def ipam_root(config: LabConfig) -> Path:
    """Where a lab keeps its pod-IP allocations (one sub-folder per node)."""
    return config.state_dir / "ipam"


class PoolExhausted(RuntimeError):
    """Every address of the node's pod CIDR is taken."""


@functools.cache  # one pod CIDR per node: made once, not for every pod (~1 ms for a /24)
def candidate_ips(cidr: str) -> tuple[str, ...]:
    """The addresses pods may get: from .2 (.1 is the node-side gateway) up to the
    last before broadcast, in order."""
    net = ipaddress.ip_network(cidr)
    if net.num_addresses < 4:
        raise ValueError(f"pod CIDR {cidr} is too small")
    return tuple(str(net[i]) for i in range(2, net.num_addresses - 1))


def next_free(cidr: str, taken: Collection[str], after: str | None = None) -> str:
    """The first address of ``cidr`` not in ``taken``, searching round-robin from
    the one after ``after`` (from .2 when ``after`` is None or not in the pool)."""
    pool = candidate_ips(cidr)
    start = pool.index(after) + 1 if after in pool else 0
    for ip in pool[start:] + pool[:start]:
        if ip not in taken:
            return ip
    raise PoolExhausted(f"no free pod IP left in {cidr} ({len(taken)} allocated)")


class IpamStore:
    """Allocations of one pod CIDR, kept in ``directory``."""

    def __init__(self, directory: Path, cidr: str) -> None:
        self.directory = Path(directory)
        self.cidr = cidr
        self._valid = set(candidate_ips(cidr))

    def claimed(self) -> list[str]:
        """Every claimed address (the names alone: no file is read)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return [name for name in names if name in self._valid]  # not temporary files, nothing foreign

    def allocations(self) -> dict[str, str]:
        """``{ip: owner}`` for every claimed address."""
        out: dict[str, str] = {}
        for name in self.claimed():
            try:
                out[name] = (self.directory / name).read_text().strip()
            except FileNotFoundError:
                continue  # released while we listed
        return out

    def lookup(self, owner: str) -> str | None:
        """The address ``owner`` holds, if any (the lowest, should there be several)."""
        mine = [ip for ip, o in self.allocations().items() if o == owner]
        return min(mine, key=ipaddress.ip_address) if mine else None

    def allocate(self, owner: str) -> str:
        """The address ``owner`` already holds, or the next free one, claimed for it."""
        existing = self.lookup(owner)
        if existing:
            return existing
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".claim-{os.getpid()}-{secrets.token_hex(6)}"
        tmp.write_text(f"{owner}\n")
        try:
            taken = set(self.claimed())
            last = self._last_reserved()
            while True:
                ip = next_free(self.cidr, taken, last)
                try:
                    os.link(tmp, self.directory / ip)
                except FileExistsError:
                    taken.add(ip)  # someone else won this one; try the next
                    continue
                self._set_last_reserved(ip)
                return ip
        finally:
            tmp.unlink(missing_ok=True)

    def _last_reserved(self) -> str | None:
        try:
            return (self.directory / "last_reserved_ip").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _set_last_reserved(self, ip: str) -> None:
        tmp = self.directory / f".last-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.write_text(ip)
        os.replace(tmp, self.directory / "last_reserved_ip")

    def release(self, owner: str) -> list[str]:
        """Frees every address ``owner`` holds; returns them (empty if none: idempotent)."""
        freed = []
        for ip, o in self.allocations().items():
            if o == owner:
                (self.directory / ip).unlink(missing_ok=True)
                freed.append(ip)
        return freed
