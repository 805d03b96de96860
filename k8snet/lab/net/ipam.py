"""Pod IP allocation for one node's pod CIDR, persisted as one file per address.

Like the CNI ``host-local`` IPAM plugin that kindnet uses: the directory holds a file
named after each allocated address whose content is the owner (the pod UID). A file
is claimed with ``link(2)`` of a fully written temporary file, which fails if the
name exists, so two allocators (two coroutines, or a restarted supervisor next to
stale state) can never hand out the same address, and a crash never leaves a
half-written claim.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Collection
from pathlib import Path


class PoolExhausted(RuntimeError):
    """Every address of the node's pod CIDR is taken."""


def candidate_ips(cidr: str) -> list[str]:
    """The addresses pods may get: from .2 (.1 is the node-side gateway) up to the
    last before broadcast, in order."""
    net = ipaddress.ip_network(cidr)
    if net.num_addresses < 4:
        raise ValueError(f"pod CIDR {cidr} is too small")
    return [str(net[i]) for i in range(2, net.num_addresses - 1)]


def lowest_free(cidr: str, taken: Collection[str]) -> str:
    """The lowest address of ``cidr`` from .2 upward that is not in ``taken``."""
    for ip in candidate_ips(cidr):
        if ip not in taken:
            return ip
    raise PoolExhausted(f"no free pod IP left in {cidr} ({len(taken)} allocated)")


class IpamStore:
    """Allocations of one pod CIDR, kept in ``directory``."""

    def __init__(self, directory: Path, cidr: str) -> None:
        self.directory = Path(directory)
        self.cidr = cidr
        self._valid = set(candidate_ips(cidr))

    def allocations(self) -> dict[str, str]:
        """``{ip: owner}`` for every claimed address."""
        out: dict[str, str] = {}
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return out
        for name in names:
            if name not in self._valid:
                continue  # temporary files and anything foreign
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
        """The address ``owner`` already holds, or the lowest free one, claimed for it."""
        existing = self.lookup(owner)
        if existing:
            return existing
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".claim-{os.getpid()}-{secrets.token_hex(6)}"
        tmp.write_text(f"{owner}\n")
        try:
            taken = set(self.allocations())
            while True:
                ip = lowest_free(self.cidr, taken)
                try:
                    os.link(tmp, self.directory / ip)
                    return ip
                except FileExistsError:
                    taken.add(ip)  # someone else won this one; try the next
        finally:
            tmp.unlink(missing_ok=True)

    def release(self, owner: str) -> list[str]:
        """Frees every address ``owner`` holds; returns them (empty if none: idempotent)."""
        freed = []
        for ip, o in self.allocations().items():
            if o == owner:
                (self.directory / ip).unlink(missing_ok=True)
                freed.append(ip)
        return freed
