"""kube-proxy's two data planes behind one interface.

A backend turns the model (:func:`.model.build_model`) into its ruleset text, loads it
into a node's namespace (remembering what it loaded, so a resync can send less), reads
back what the kernel holds, and traces a packet through a rendered ruleset
(:mod:`.tracer`). :func:`backend_for` is the one place a :data:`ProxyMode` turns
into code; the proxy, ``k8snet.datapath`` and the doctor all go through it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import re
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Iterable, TypeVar

from ..config import ProxyMode, proxy_mode
from .iptables import TABLE_ORDER, IptablesRenderer, IptablesRuleset, rule_count
from .iptables_trace import parse_iptables
from .iptsync import iptables_transaction
from .model import NodeInfo, ServicePort
from .nft_trace import parse_nft
from .nftables import TABLE, NftablesRenderer, NftTable, nft_rule_count
from .nftlib import NftError, NftSession, run_once
from .nftsync import nft_transaction
from .tracer import Packet, ParsedRuleset, TraceResult, trace

log = logging.getLogger(__name__)

R = TypeVar("R")  # a mode's ruleset object

# Partial syncs trust that the kernel still holds what we last applied; a periodic
# full reload repairs any drift. kube-proxy's FullSyncPeriod is an hour; iptables
# mode here edits the shared chains in place (see .iptsync), trusting the kernel's
# state more than kube-proxy does, so it reloads every minute (the role of
# kube-proxy's --iptables-sync-period); at lab sizes a full restore costs milliseconds.
FULL_SYNC_SECONDS = 3600.0
IPTABLES_FULL_SYNC_SECONDS = 60.0
IPTABLES_ARGV = ("iptables-restore", "-w")  # replaces the tables it is given
IPTABLES_PARTIAL_ARGV = (*IPTABLES_ARGV, "--noflush")  # changes only the chains it names


class ApplyError(RuntimeError):
    """The kernel (iptables-restore / nft) refused a ruleset."""


@dataclass(frozen=True)
class Applied:
    """What one sync did."""

    changed: bool  # False: the kernel already held these rules, nothing was sent
    full: bool  # False: only the difference was sent (an nftables partial sync)
    rules: int  # rules (+ map elements in nftables) of the whole ruleset
    render_s: float = 0.0  # rendering and diffing, before the loader ran


class ProxyBackend(ABC, Generic[R]):
    """One node's data plane in one mode.

    :meth:`apply` loads the whole ruleset first (and every ``full_sync_seconds`` or
    after a failure), else only the difference to what it applied last (a partial
    sync), like kube-proxy's proxiers.
    """

    mode: ClassVar[ProxyMode]
    live_argv: ClassVar[tuple[str, ...]]  # prints what the kernel holds
    full_sync_seconds: ClassVar[float] = FULL_SYNC_SECONDS

    def __init__(self, node: NodeInfo) -> None:
        self.node = node
        self._applied: R | None = None
        self._last_full_sync = 0.0

    @abstractmethod
    def ruleset(self, model: list[ServicePort]) -> R:
        """The mode's ruleset object for ``model`` (re-rendering only changed services)."""

    @staticmethod
    @abstractmethod
    def ruleset_text(rules: R) -> str:
        """The whole ruleset as the loader's input text."""

    @staticmethod
    @abstractmethod
    def ruleset_count(rules: R) -> int:
        """Rules (in nftables also map elements) of a ruleset."""

    @staticmethod
    @abstractmethod
    def transaction(old: R, new: R) -> str | None:
        """Partial-sync input from ``old`` to ``new``: "" if equal, None if only a full load will do."""

    def index(self, rules: R) -> None:
        """Prepares a fully loaded ruleset for the next partial sync's comparison, so
        that one-time cost lands in the (slow anyway) full sync. Nothing by default."""

    def render(self, model: list[ServicePort]) -> str:
        """The whole ruleset for ``model`` as the loader's input text."""
        return self.ruleset_text(self.ruleset(model))

    @staticmethod
    @abstractmethod
    def rule_count(text: str) -> int:
        """The units a ruleset text carries (rules; in nftables also map elements)."""

    def force_full_sync(self) -> None:
        """Makes the next :meth:`apply` load the whole ruleset."""
        self._applied = None

    async def load(self, netns: str, text: str, *, partial: bool) -> None:
        """Sends a whole ruleset or a partial sync's input to the kernel (ApplyError if refused)."""
        await apply_ruleset(netns, self.mode, text, partial=partial)

    def close(self) -> None:
        """Frees what the backend keeps open between syncs. Nothing by default."""

    async def apply(self, netns: str, model: list[ServicePort]) -> Applied:
        """Makes ``netns`` hold ``model``'s rules, sending only what changed since the
        last successful apply unless a full sync is due."""
        start = time.monotonic()
        rules = self.ruleset(model)
        tx = None
        if self._applied is not None and start - self._last_full_sync < self.full_sync_seconds:
            tx = self.transaction(self._applied, rules)
        render_s = time.monotonic() - start
        if tx:
            try:
                await self.load(netns, tx, partial=True)
            except ApplyError as err:
                # The kernel no longer holds what we think it does: start over.
                log.warning("kube-proxy %s: partial sync failed, reloading: %s", self.node.name, err)
                tx = None
        if tx is None:
            # Forget what was applied first: if the reload fails too, the retry is a full one.
            self._applied = None
            text = self.ruleset_text(rules)
            render_s = time.monotonic() - start
            await self.load(netns, text, partial=False)
            self._last_full_sync = time.monotonic()
            self.index(rules)
            _freeze_heap()
        self._applied = rules
        return Applied(tx != "", tx is None, self.ruleset_count(rules), render_s)

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


class IptablesBackend(ProxyBackend[IptablesRuleset]):
    """The filter and nat tables: a whole ``iptables-restore`` first (and every
    IPTABLES_FULL_SYNC_SECONDS or after a failure), else ``--noflush`` with only the
    changed chains (:mod:`.iptsync`)."""

    mode = "iptables"
    live_argv = ("iptables-save",)
    full_sync_seconds = IPTABLES_FULL_SYNC_SECONDS

    def __init__(self, node: NodeInfo) -> None:
        super().__init__(node)
        self._renderer = IptablesRenderer(node)

    def ruleset(self, model: list[ServicePort]) -> IptablesRuleset:
        return self._renderer.ruleset(model)

    @staticmethod
    def ruleset_text(rules: IptablesRuleset) -> str:
        return rules.text()

    @staticmethod
    def ruleset_count(rules: IptablesRuleset) -> int:
        return rules.rule_count()

    @staticmethod
    def transaction(old: IptablesRuleset, new: IptablesRuleset) -> str | None:
        return iptables_transaction(old, new)

    def index(self, rules: IptablesRuleset) -> None:
        # Groups every service's rules by chain (cached on each part, reused while
        # the service is unchanged): 50,000 rules split once, not in the next sync.
        for table in TABLE_ORDER:
            rules.shared(table)

    @staticmethod
    def rule_count(text: str) -> int:
        return rule_count(text)

    @staticmethod
    def parse(text: str) -> ParsedRuleset:
        return parse_iptables(text)


class NftablesBackend(ProxyBackend[NftTable]):
    """Table ``ip kube-proxy``: a full reload first (and every FULL_SYNC_SECONDS or
    after a failure), else a transaction of only the changes (:mod:`.nftsync`), both
    through one libnftables context per node kept between syncs (:mod:`.nftlib`)."""

    mode = "nftables"
    live_argv = ("nft", "list", "table", "ip", TABLE)

    def __init__(self, node: NodeInfo) -> None:
        super().__init__(node)
        self._renderer = NftablesRenderer(node)
        self._session: NftSession | None = None

    async def load(self, netns: str, text: str, *, partial: bool) -> None:
        if not partial:
            # A whole load goes through a context of its own: the kept context's cache
            # predates it, and a context that ran it would hold the whole table as parsed
            # from the text, which its next transaction frees and fetches again (slower
            # than a fresh context's first fetch).
            self.close()
            await apply_ruleset(netns, self.mode, text)
            return
        if self._session is None or self._session.netns != netns:
            self.close()
            self._session = NftSession(netns)
        await _load_nft(self._session.run, netns, text)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def ruleset(self, model: list[ServicePort]) -> NftTable:
        return self._renderer.ruleset(model)

    @staticmethod
    def ruleset_text(rules: NftTable) -> str:
        return rules.text()

    @staticmethod
    def ruleset_count(rules: NftTable) -> int:
        return rules.rules

    @staticmethod
    def transaction(old: NftTable, new: NftTable) -> str | None:
        return nft_transaction(old, new)

    @staticmethod
    def rule_count(text: str) -> int:
        return nft_rule_count(text)

    @staticmethod
    def parse(text: str) -> ParsedRuleset:
        return parse_nft(text)


def _freeze_heap() -> None:
    """Exempts what lives now from the cyclic garbage collector until the next full sync.

    The cached per-service rules are long-lived and free of reference cycles; left to
    the collector, every full collection walks all of them (~0.1 s inside a partial sync
    with 10,000 Services). Refcounting still frees whatever later becomes garbage; the
    unfreeze + collect first lets cycles that died since the last full sync (in any
    component of the process) be collected rather than frozen for good.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


BACKENDS: dict[ProxyMode, type[ProxyBackend]] = {b.mode: b for b in (IptablesBackend, NftablesBackend)}


def backend_class(mode: str) -> type[ProxyBackend]:
    """The backend of ``mode``; ValueError for a mode the lab does not have."""
    return BACKENDS[proxy_mode(mode)]


def backend_for(mode: str, node: NodeInfo) -> ProxyBackend:
    return backend_class(mode)(node)


async def apply_ruleset(netns: str, mode: str, text: str, *, partial: bool = False) -> None:
    """Loads a ruleset (or a partial sync's input) into ``netns`` in one transaction.

    A plain (not ``--noflush``) iptables-restore replaces the filter and nat
    tables atomically, a ``--noflush`` one changes only what it names (each table
    one transaction); nftables input runs as one transaction (libnftables, in a
    context of its own: a backend keeps one between syncs instead).
    """
    if proxy_mode(mode) == "nftables":
        await _load_nft(functools.partial(run_once, netns), netns, text)
        return
    argv = IPTABLES_PARTIAL_ARGV if partial else IPTABLES_ARGV
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, *argv,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise ApplyError(f"{argv[0]} in {netns} failed: {stderr.decode().strip()}\n{_context(text, stderr.decode())}")


async def _load_nft(run: Callable[[str], Awaitable[None]], netns: str, text: str) -> None:
    try:
        await run(text)
    except NftError as err:
        raise ApplyError(f"nft in {netns} failed: {err}") from None


def _context(text: str, err: str) -> str:
    """The lines around the one the tool complained about (like utiliptables.ExtractLines)."""
    m = re.search(r"line:? (\d+)", err)
    if not m:
        return ""
    lines = text.splitlines()
    n = int(m.group(1))
    lo, hi = max(0, n - 3), min(len(lines), n + 2)
    return "\n".join(f"{i + 1:5} {lines[i]}" for i in range(lo, hi))
