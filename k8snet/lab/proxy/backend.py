"""kube-proxy's two data planes behind one interface.

A backend turns the model (:func:`.model.build_model`) into its ruleset text, loads it
into a node's namespace (remembering what it loaded, so a resync can send less), reads
back what the kernel holds, and traces a packet through a rendered ruleset
(:mod:`.tracer`). :func:`backend_for` is the one place a :data:`ProxyMode` turns
into code; the proxy, ``k8snet.datapath`` and the doctor all go through it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Iterable

from ..config import ProxyMode, proxy_mode
from .iptables import IptablesRenderer, rule_count
from .iptables_trace import parse_iptables
from .model import NodeInfo, ServicePort
from .nft_trace import parse_nft
from .nftables import TABLE, NftablesRenderer, NftRuleset, nft_rule_count
from .nftsync import nft_ruleset_count, nft_transaction
from .tracer import Packet, ParsedRuleset, TraceResult, trace

log = logging.getLogger(__name__)

# Partial syncs trust that the kernel still holds what we last applied; a periodic
# full reload repairs any drift (kube-proxy's FullSyncPeriod is also an hour).
FULL_SYNC_SECONDS = 3600.0


class ApplyError(RuntimeError):
    """The kernel (iptables-restore / nft) refused a ruleset."""


@dataclass(frozen=True)
class Applied:
    """What one sync did."""

    changed: bool  # False: the kernel already held these rules, nothing was sent
    full: bool  # False: only the difference was sent (an nftables partial sync)
    rules: int  # rules (+ map elements in nftables) of the whole ruleset


class ProxyBackend(ABC):
    """One node's data plane in one mode."""

    mode: ClassVar[ProxyMode]
    apply_argv: ClassVar[tuple[str, ...]]  # reads a ruleset (or transaction) on stdin
    live_argv: ClassVar[tuple[str, ...]]  # prints what the kernel holds

    def __init__(self, node: NodeInfo) -> None:
        self.node = node

    @abstractmethod
    def render(self, model: list[ServicePort]) -> str:
        """The whole ruleset for ``model`` as the loader's input text."""

    @staticmethod
    @abstractmethod
    def rule_count(text: str) -> int:
        """The units a ruleset text carries (rules; in nftables also map elements)."""

    @abstractmethod
    async def apply(self, netns: str, model: list[ServicePort]) -> Applied:
        """Makes ``netns`` hold ``model``'s rules, sending only what changed since the
        last successful apply where the mode allows it."""

    @staticmethod
    @abstractmethod
    def parse(text: str) -> ParsedRuleset:
        """A rendered (or listed) ruleset, for :meth:`trace`; TracerError if not understood."""

    @classmethod
    def trace(cls, text: str, packet: Packet, local_addresses: Iterable[str]) -> TraceResult:
        """``packet``'s path through ``text`` on a node with these own addresses."""
        return trace(cls.parse(text), packet, local_addresses)

    @classmethod
    def read_live(cls, netns: str, counters: bool = False) -> str:
        """What the kernel in ``netns`` holds (needs root)."""
        argv = [*cls.live_argv, *(("-c",) if counters and cls.mode == "iptables" else ())]
        done = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {netns} failed: {done.stderr.strip()}")
        return done.stdout


class IptablesBackend(ProxyBackend):
    """Whole filter and nat tables through ``iptables-restore`` (unchanged text is not resent)."""

    mode = "iptables"
    apply_argv = ("iptables-restore", "-w")
    live_argv = ("iptables-save",)

    def __init__(self, node: NodeInfo) -> None:
        super().__init__(node)
        self._renderer = IptablesRenderer(node)
        self._applied: str | None = None

    def render(self, model: list[ServicePort]) -> str:
        return self._renderer.render(model)

    @staticmethod
    def rule_count(text: str) -> int:
        return rule_count(text)

    async def apply(self, netns: str, model: list[ServicePort]) -> Applied:
        text = self.render(model)
        changed = text != self._applied
        if changed:
            await apply_ruleset(netns, self.mode, text)
            self._applied = text
        return Applied(changed, True, rule_count(text))

    @staticmethod
    def parse(text: str) -> ParsedRuleset:
        return parse_iptables(text)


class NftablesBackend(ProxyBackend):
    """Table ``ip kube-proxy``: a full ``nft -f`` reload first (and every
    FULL_SYNC_SECONDS or after a failure), else a transaction of only the changes."""

    mode = "nftables"
    apply_argv = ("nft", "-f", "-")
    live_argv = ("nft", "list", "table", "ip", TABLE)

    def __init__(self, node: NodeInfo) -> None:
        super().__init__(node)
        self._renderer = NftablesRenderer(node)
        self._applied: NftRuleset | None = None
        self._last_full_sync = 0.0

    def render(self, model: list[ServicePort]) -> str:
        return self._renderer.ruleset(model).text()

    @staticmethod
    def rule_count(text: str) -> int:
        return nft_rule_count(text)

    async def apply(self, netns: str, model: list[ServicePort]) -> Applied:
        rules = self._renderer.ruleset(model)
        tx = None
        if self._applied is not None and time.monotonic() - self._last_full_sync < FULL_SYNC_SECONDS:
            tx = nft_transaction(self._applied, rules)
        if tx:
            try:
                await apply_ruleset(netns, self.mode, tx)
            except ApplyError as err:
                # The kernel no longer holds what we think it does: start over.
                log.warning("kube-proxy %s: partial sync failed, reloading the table: %s", self.node.name, err)
                tx = None
        if tx is None:
            # Forget what was applied first: if the reload fails too, the retry is a full one.
            self._applied = None
            await apply_ruleset(netns, self.mode, rules.text())
            self._last_full_sync = time.monotonic()
        self._applied = rules
        return Applied(tx != "", tx is None, nft_ruleset_count(rules))

    @staticmethod
    def parse(text: str) -> ParsedRuleset:
        return parse_nft(text)


BACKENDS: dict[ProxyMode, type[ProxyBackend]] = {b.mode: b for b in (IptablesBackend, NftablesBackend)}


def backend_class(mode: str) -> type[ProxyBackend]:
    """The backend of ``mode``; ValueError for a mode the lab does not have."""
    return BACKENDS[proxy_mode(mode)]


def backend_for(mode: str, node: NodeInfo) -> ProxyBackend:
    return backend_class(mode)(node)


async def apply_ruleset(netns: str, mode: str, text: str) -> None:
    """Loads a ruleset (or an nft transaction) into ``netns`` in one transaction.

    A plain (not ``--noflush``) iptables-restore replaces the filter and nat
    tables atomically; ``nft -f`` runs the file as one transaction.
    """
    argv = backend_class(mode).apply_argv
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, *backend_class(mode).apply_argv,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise ApplyError(f"{argv[0]} in {netns} failed: {err.decode().strip()}\n{_context(text, err.decode())}")


def _context(text: str, err: str) -> str:
    """The lines around the one the tool complained about (like utiliptables.ExtractLines)."""
    m = re.search(r"line:? (\d+)", err)
    if not m:
        return ""
    lines = text.splitlines()
    n = int(m.group(1))
    lo, hi = max(0, n - 3), min(len(lines), n + 2)
    return "\n".join(f"{i + 1:5} {lines[i]}" for i in range(lo, hi))
