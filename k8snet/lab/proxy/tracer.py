"""Following one packet through a node's rendered proxy rules, without a kernel.

After the tracers in kube-proxy's own tests (``pkg/proxy/nftables/helpers_test.go``
``tracePacket`` and the iptables proxier's ``iptablesTracer``), but deterministic
where they fan out: a packet carries one uniform *draw* in [0, 1) that decides every
random choice, so a draw picks exactly one endpoint. ``iptables -m statistic`` rules
with 1/n, 1/(n-1), ... and nft's ``numgen random mod n`` then give the same endpoint
for the same draw: endpoint ``floor(draw * n)`` of the (sorted) endpoints.

The two syntaxes are parsed by :mod:`.iptables_trace` and :mod:`.nft_trace` into the
:class:`ParsedRuleset` below (chains of rules whose matches and actions are small
functions of the packet); this module walks it the way netfilter does for the
first packet of a connection (the only one the nat hooks see):

- a packet arriving on an interface (from a pod or from outside the node):
  prerouting, then input when its (possibly DNATed) destination is the node's own,
  else forward and postrouting;
- a packet the node itself sends (``from_node``): output and postrouting, then
  input if it is addressed to the node.

Within a hook the base chains run in priority order (iptables tables have fixed
priorities: nat's dstnat -100, filter 0, nat's srcnat 100), so a filter chain before
dstnat (nft's ``filter-prerouting`` at -110) sees the original destination and one
after it the translated one.

Only what the lab's renderers write is understood; the parsers refuse anything else
(:class:`TracerError`), so a renderer change cannot slip past a tracer that would
silently ignore it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Iterable

HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class TracerError(ValueError):
    """The ruleset holds a construct the tracer does not model (or is malformed)."""


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection, as the node sees it.

    ``affinity``: the endpoint (``ip:port``) this client is remembered for by session
    affinity (the ``-m recent`` lists / nft affinity sets hold its source address for
    that endpoint), or None when it has no live entry.
    """

    src: str
    dst: str
    dport: int
    protocol: str = "tcp"
    from_node: bool = False
    draw: float = 0.0
    affinity: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.draw < 1.0:
            raise ValueError(f"draw must be in [0, 1), not {self.draw}")
        for addr in (self.src, self.dst):
            ipaddress.IPv4Address(addr)  # raises ValueError with the bad address


@dataclass(frozen=True)
class Verdict:
    """What an action decided: ``jump``/``goto`` (arg: chain), ``return``, ``accept``,
    ``drop``, ``reject``, ``dnat`` (arg: ip:port), ``masquerade``; ``continue``: the
    rule matched but the packet goes on to the next rule (MARK, ``-m recent --set``)."""

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.arg}".strip()


CONTINUE = Verdict("continue")
# A vmap lookup that found no element: the rule did not match after all.
MISS = None

Match = Callable[["PacketState"], bool]
Action = Callable[["PacketState"], "Verdict | None"]


# The parsers build a rule's matches and actions in loops: these bind the parsed value
# now (a bare lambda would see the loop variable's last value when the rule runs).
def gives(verdict: Verdict) -> Action:
    """An action with a fixed verdict (jump, goto, accept, reject, dnat, ...)."""
    return lambda s: verdict


def protocol_is(proto: str) -> Match:
    return lambda s: s.protocol == proto


@dataclass
class Rule:
    table: str
    chain: str
    text: str
    matches: list[Match] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    remembers: tuple[str, ...] = ()  # affinity lists / sets this rule adds the source to
    dnat: str | None = None  # the endpoint this rule DNATs to, if it does


@dataclass(frozen=True)
class BaseChain:
    hook: str
    priority: int
    table: str
    chain: str


@dataclass
class ParsedRuleset:
    """Chains keyed by (table, chain) and the base chains that hook them."""

    mode: str
    chains: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    base_chains: list[BaseChain] = field(default_factory=list)

    def affinity_endpoints(self) -> dict[str, str]:
        """Affinity list/set name -> the endpoint whose chain adds clients to it."""
        found: dict[str, str] = {}
        for rules in self.chains.values():
            for i, rule in enumerate(rules):
                for name in rule.remembers:
                    target = next((r.dnat for r in rules[i:] if r.dnat), None)
                    if target is None:
                        raise TracerError(f"{self.mode}: affinity list {name!r} is set in chain "
                                          f"{rule.chain!r}, which DNATs nowhere")
                    found[name] = target
        return found


@dataclass
class PacketState:
    """The packet as the rules see it while it travels (the destination changes with DNAT)."""

    src: str
    dst: str
    dport: int
    protocol: str
    from_node: bool
    local_addresses: frozenset[str]
    affinity: str | None
    affinity_endpoints: dict[str, str]
    draw: float
    mark: int = 0
    dnat: str | None = None
    masquerade: bool = False

    def is_local(self, addr: str) -> bool:
        return addr in self.local_addresses or ipaddress.IPv4Address(addr) in LOOPBACK

    def take(self, n: int) -> int:
        """Picks one of ``n`` equally likely choices with the draw, keeping what is left
        of it uniform for the next random choice."""
        scaled = self.draw * n
        index = min(int(scaled), n - 1)
        self.draw = scaled - index
        return index

    def chance(self, p: float) -> bool:
        """True with probability ``p`` (an iptables statistic match), consuming the draw."""
        if self.draw < p:
            self.draw = self.draw / p
            return True
        self.draw = (self.draw - p) / (1.0 - p) if p < 1.0 else 0.0
        return False

    def remembered(self, name: str) -> bool:
        """Is the source in affinity list/set ``name``?"""
        return self.affinity is not None and self.affinity_endpoints.get(name) == self.affinity


@dataclass(frozen=True)
class TraceStep:
    hook: str
    table: str
    chain: str
    rule: str
    verdict: str


@dataclass(frozen=True)
class TraceResult:
    """Where the packet went: the rules it matched in order, and the outcome.

    ``verdict``: ACCEPT (it passes; with ``dnat`` set it goes to that endpoint), DROP
    or REJECT. ``masquerade``: its source is rewritten to the node's address on the
    way out (the masquerade mark reached postrouting's MASQUERADE).
    """

    mode: str
    steps: tuple[TraceStep, ...]
    hooks: tuple[str, ...]
    verdict: str
    dnat: str | None
    masquerade: bool

    @property
    def chains(self) -> list[str]:
        """The chains the packet matched a rule in, in order, without repeats in a row."""
        out: list[str] = []
        for step in self.steps:
            if not out or out[-1] != step.chain:
                out.append(step.chain)
        return out

    def summary(self) -> str:
        target = f" to {self.dnat}" if self.dnat else ""
        masq = ", masqueraded" if self.masquerade else ""
        return f"{self.verdict}{target}{masq}"


def _hooks_for(packet: Packet, state: PacketState, run: Callable[[str], str]) -> tuple[list[str], str]:
    """Runs the hooks in netfilter's order for this packet; returns them and the final verdict."""
    order = ["output", "postrouting"] if packet.from_node else ["prerouting"]
    passed: list[str] = []
    for hook in order:
        passed.append(hook)
        verdict = run(hook)
        if verdict != "ACCEPT":
            return passed, verdict
    # The routing decision uses the destination after any DNAT.
    rest = ["input"] if state.is_local(state.dst) else ([] if packet.from_node else ["forward", "postrouting"])
    for hook in rest:
        passed.append(hook)
        verdict = run(hook)
        if verdict != "ACCEPT":
            return passed, verdict
    return passed, "ACCEPT"


def trace(ruleset: ParsedRuleset, packet: Packet, local_addresses: Iterable[str]) -> TraceResult:
    """Follows ``packet`` through ``ruleset`` on a node whose own addresses are
    ``local_addresses`` (127.0.0.0/8 always counts as local)."""
    state = PacketState(src=packet.src, dst=packet.dst, dport=packet.dport, protocol=packet.protocol.lower(),
                        from_node=packet.from_node, local_addresses=frozenset(local_addresses),
                        affinity=packet.affinity, affinity_endpoints=ruleset.affinity_endpoints(),
                        draw=packet.draw)
    steps: list[TraceStep] = []

    def run_hook(hook: str) -> str:
        for base in sorted((b for b in ruleset.base_chains if b.hook == hook), key=lambda b: b.priority):
            verdict = _run_chain(ruleset, base, state, steps)
            if verdict.kind in ("drop", "reject"):
                return verdict.kind.upper()
        return "ACCEPT"

    hooks, verdict = _hooks_for(packet, state, run_hook)
    return TraceResult(mode=ruleset.mode, steps=tuple(steps), hooks=tuple(hooks), verdict=verdict,
                       dnat=state.dnat, masquerade=state.masquerade)


MAX_STEPS = 10_000  # a jump loop in broken rules must not hang the tracer


def _run_chain(rs: ParsedRuleset, base: BaseChain, state: PacketState, steps: list[TraceStep]) -> Verdict:
    """One base chain to its verdict, following jumps (return to the caller) and gotos
    (which replace the current chain, so its end returns to the jumping chain's caller)."""
    frames: list[tuple[str, int]] = [(base.chain, 0)]
    budget = MAX_STEPS
    while frames:
        chain, index = frames.pop()
        rules = rs.chains.get((base.table, chain))
        if rules is None:
            raise TracerError(f"{rs.mode}: chain {chain!r} of table {base.table!r} does not exist")
        while index < len(rules):
            budget -= 1
            if budget < 0:
                raise TracerError(f"{rs.mode}: more than {MAX_STEPS} rules evaluated: a jump loop?")
            rule = rules[index]
            index += 1
            if not all(match(state) for match in rule.matches):
                continue
            verdict: Verdict | None = CONTINUE
            for action in rule.actions:
                verdict = action(state)
                if verdict is MISS or verdict.kind != "continue":
                    break
            if verdict is MISS:
                continue
            steps.append(TraceStep(base.hook, base.table, chain, rule.text, str(verdict)))
            if verdict.kind == "continue":
                continue
            if verdict.kind == "jump":
                frames.append((chain, index))
                frames.append((verdict.arg, 0))
                break
            if verdict.kind == "goto":
                frames.append((verdict.arg, 0))
                break
            if verdict.kind == "return":
                break
            if verdict.kind == "dnat":
                state.dnat = verdict.arg
                state.dst, port = verdict.arg.rsplit(":", 1)
                state.dport = int(port)
                return Verdict("accept")
            if verdict.kind == "masquerade":
                state.masquerade = True
                return Verdict("accept")
            return verdict  # accept, drop, reject
    return Verdict("accept")  # every lab base chain has policy accept


def in_network(addr: str, cidr: str) -> bool:
    """``addr`` in ``cidr`` (a bare address is a /32)."""
    try:
        return ipaddress.IPv4Address(addr) in ipaddress.IPv4Network(cidr, strict=False)
    except ValueError as err:
        raise TracerError(f"not an IPv4 address or network: {cidr!r}") from err
