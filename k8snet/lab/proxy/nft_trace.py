"""An ``nft -f`` file as :mod:`.nftables` renders it -> a :class:`tracer.ParsedRuleset`.

The kernel's listing (``nft list table``) spells some statements differently (``meta
mark set meta mark | 0x00004000``); those are refused like any other unknown construct.

Understands what :mod:`.nftables` writes: one ``ip`` table with sets, verdict maps
and chains; base chains ``type ... hook ... priority ...; policy accept;``; matches
``ip daddr|saddr`` (address, network, ``{ ... }``, ``@set``, ``!=``), ``th|tcp|udp|sctp
dport``, ``meta l4proto``, ``ct state``, ``fib daddr|saddr type local``, ``mark and M
== V``; concatenations looked up with ``vmap @map``; statements ``jump``/``goto``,
``return``, ``accept``, ``drop``, ``reject``, ``dnat to ip:port``, ``masquerade``,
``mark set mark or|xor M``, ``update @set { ip saddr }``, ``numgen random mod N vmap
{ ... }``, ``counter``, ``comment``. Anything else raises :class:`tracer.TracerError`.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import Callable

from .tracer import (
    CONTINUE,
    MISS,
    BaseChain,
    PacketState,
    ParsedRuleset,
    Rule,
    TracerError,
    Verdict,
    gives,
    protocol_is,
)

# nft's named priorities (the ones the lab's or nft's own listing can use).
PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
PROTO_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp"}
TYPES = {"ipv4_addr": "addr", "inet_proto": "proto", "inet_service": "port"}

Selector = Callable[[PacketState], str]


@dataclass
class _Set:
    name: str
    kinds: list[str]  # key types: addr / proto / port
    is_map: bool
    dynamic: bool = False
    elements: dict[tuple[str, ...], str] = field(default_factory=dict)  # key -> verdict text ("" for sets)


def parse_nft(text: str) -> ParsedRuleset:
    sets, chains, table = _structure(text)
    rs = ParsedRuleset(mode="nftables")
    for name, (header, _rules) in chains.items():
        rs.chains[(table, name)] = []
        if header:
            rs.base_chains.append(_base_chain(table, name, header))
    for name, (_, rules) in chains.items():
        for number, line in rules:
            rs.chains[(table, name)].append(_Compiler(sets, set(chains), table, name, line, number).compile())
    return rs


def _structure(text: str) -> tuple[dict[str, _Set], dict[str, tuple[str, list[tuple[int, str]]]], str]:
    """Sets (with elements) and chains (header, rule lines) of the one table."""
    sets: dict[str, _Set] = {}
    chains: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    table = ""
    block: tuple[str, str] | None = None  # ("set"|"map"|"chain", name)
    pending: tuple[_Set, list[str]] | None = None  # a set whose elements span lines, and those lines
    lines = text.splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if pending is not None:
            pending[1].append(line)
            if "}" in line:
                _add_elements(pending[0], " ".join(pending[1]), number)
                pending = None
            continue
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if block is None:
            if words[:2] in (["add", "table"], ["delete", "table"], ["flush", "table"]):
                continue
            if words[0] == "table" and line.endswith("{"):
                if table:
                    raise TracerError(f"nft line {number}: a second table; the tracer reads one")
                if words[1] != "ip":
                    raise TracerError(f"nft line {number}: family {words[1]!r} is not modelled (only ip)")
                table = words[2]
            elif words[0] in ("set", "map", "chain") and line.endswith("{"):
                block = (words[0], words[1])
                if words[0] == "chain":
                    chains[words[1]] = ("", [])
                else:
                    sets[words[1]] = _Set(words[1], [], words[0] == "map")
            elif line == "}":
                table = table  # end of the table
            elif words[0] == "comment":
                continue
            else:
                raise TracerError(f"nft line {number}: cannot parse {line!r}")
            continue
        kind, name = block
        if line == "}":
            block = None
        elif kind == "chain":
            if line.startswith("type "):
                chains[name] = (line, chains[name][1])
            else:
                chains[name][1].append((number, line))
        elif words[0] == "type":
            s = sets[name]
            key = line[len("type "):].split(" : ")
            if s.is_map and (len(key) != 2 or key[1].strip() != "verdict"):
                raise TracerError(f"nft line {number}: map {name!r} is not a verdict map")
            try:
                s.kinds = [TYPES[t.strip()] for t in key[0].split(" . ")]
            except KeyError as err:
                raise TracerError(f"nft line {number}: key type {err.args[0]!r} is not modelled") from None
        elif words[0] == "flags":
            flags = {f for f in " ".join(words[1:]).replace(",", " ").replace(";", " ").split()}
            if not flags <= {"dynamic", "timeout"}:
                raise TracerError(f"nft line {number}: set flags {sorted(flags)} are not modelled")
            sets[name].dynamic = "dynamic" in flags
        elif words[0] in ("comment", "timeout", "size", "policy"):
            continue
        elif line.startswith("elements = {"):
            if "}" in line:
                _add_elements(sets[name], line, number)
            else:
                pending = (sets[name], [line])
        else:
            raise TracerError(f"nft line {number}: cannot parse {line!r} in {kind} {name}")
    if not table:
        raise TracerError("nft: no table in the text")
    return sets, chains, table


def _add_elements(s: _Set, text: str, number: int) -> None:
    body = text.split("{", 1)[1].rsplit("}", 1)[0]
    for elem in (e.strip() for e in body.split(",")):
        if not elem:
            continue
        key, _, verdict = elem.partition(" : ")
        if s.is_map != bool(verdict):
            raise TracerError(f"nft line {number}: element {elem!r} does not fit {s.name!r}")
        parts = key.split(" . ")
        if len(parts) != len(s.kinds):
            raise TracerError(f"nft line {number}: element {elem!r} has {len(parts)} fields, {s.name!r} {len(s.kinds)}")
        s.elements[tuple(_normal(k, p, number) for k, p in zip(s.kinds, parts))] = verdict.strip()


def _normal(kind: str, value: str, number: int) -> str:
    """One key field as the tracer compares it: an address, a protocol name, a port number."""
    try:
        if kind == "addr":
            return str(ipaddress.IPv4Address(value))
        if kind == "port":
            return str(int(value))
        return PROTO_NUMBERS.get(value, value.lower())
    except ValueError:
        raise TracerError(f"nft line {number}: {value!r} is not a single {kind} (ranges and prefixes "
                          "in map keys are not modelled)") from None


def _base_chain(table: str, name: str, header: str) -> BaseChain:
    # "type nat hook prerouting priority -100; policy accept;"  (or "priority dstnat - 10")
    parts = header.replace(";", " ; ").split()
    try:
        hook = parts[parts.index("hook") + 1]
        prio_words = parts[parts.index("priority") + 1:parts.index(";")]
        policy = parts[parts.index("policy") + 1] if "policy" in parts else "accept"
    except (ValueError, IndexError):
        raise TracerError(f"nft: cannot read the base chain header of {name!r}: {header!r}") from None
    if policy != "accept":
        raise TracerError(f"nft: base chain {name!r} has policy {policy}; only accept is modelled")
    first = prio_words[0]
    priority = PRIORITIES[first] if first in PRIORITIES else int(first)
    if len(prio_words) == 3 and prio_words[1] in "+-":
        priority += int(prio_words[2]) * (1 if prio_words[1] == "+" else -1)
    return BaseChain(hook, priority, table, name)


class _Compiler:
    """One rule's text -> its matches and actions."""

    def __init__(self, sets: dict[str, _Set], chains: set[str], table: str, chain: str, line: str, number: int):
        self.sets, self.chain_names, self.number, self.line = sets, chains, number, line
        try:
            self.tokens = shlex.split(line.replace(",", " , ").replace("{", " { ").replace("}", " } "))
        except ValueError as err:
            raise TracerError(f"nft line {number}: {err}") from None
        self.i = 0
        self.rule = Rule(table, chain, line)

    def fail(self, what: str) -> TracerError:
        return TracerError(f"nft line {self.number}: {what} is not modelled by the tracer: {self.line}")

    def peek(self, ahead: int = 0) -> str:
        return self.tokens[self.i + ahead] if self.i + ahead < len(self.tokens) else ""

    def next(self) -> str:
        tok = self.peek()
        if not tok:
            raise TracerError(f"nft line {self.number}: the rule ends too early: {self.line}")
        self.i += 1
        return tok

    def expect(self, *words: str) -> None:
        for word in words:
            got = self.next()
            if got != word:
                raise self.fail(f"{got!r} where {word!r} was expected;")

    def braced(self) -> list[str]:
        """The comma-separated items of ``{ ... }`` at the cursor."""
        self.expect("{")
        items: list[str] = []
        current: list[str] = []
        while (tok := self.next()) != "}":
            if tok == ",":
                items.append(" ".join(current))
                current = []
            else:
                current.append(tok)
        if current:
            items.append(" ".join(current))
        return items

    def verdict_of(self, text: str) -> Verdict:
        words = text.split()
        if len(words) == 2 and words[0] in ("jump", "goto"):
            if words[1] not in self.chain_names:
                raise TracerError(f"nft line {self.number}: {words[0]} to unknown chain {words[1]!r}")
            return Verdict(words[0], words[1])
        if len(words) == 1 and words[0] in ("accept", "drop", "return"):
            return Verdict(words[0])
        raise self.fail(f"verdict {text!r}")

    def compile(self) -> Rule:
        while self.i < len(self.tokens):
            tok = self.peek()
            if tok == "comment":
                self.i += 2
            elif tok == "counter":
                self.i += 1
                if self.peek() == "packets":
                    self.i += 4
            elif tok in ("jump", "goto"):
                self.i += 1
                verdict = self.verdict_of(f"{tok} {self.next()}")
                self.rule.actions.append(gives(verdict))
            elif tok in ("accept", "drop", "return"):
                self.i += 1
                verdict = Verdict(tok)
                self.rule.actions.append(gives(verdict))
            elif tok == "reject":
                self.i += 1
                if self.peek() == "with":
                    raise self.fail("reject with")
                self.rule.actions.append(gives(Verdict("reject")))
            elif tok == "masquerade":
                self.i += 1
                if self.peek() in ("fully-random", "random", "persistent"):
                    self.i += 1
                self.rule.actions.append(gives(Verdict("masquerade")))
            elif tok == "dnat":
                self.i += 1
                self.expect("to")
                target = self.next()
                ip, _, port = target.rpartition(":")
                if not ip or not port.isdigit():
                    raise self.fail(f"dnat to {target!r} (address:port expected)")
                self.rule.dnat = target
                self.rule.actions.append(gives(Verdict("dnat", target)))
            elif tok == "update":
                self._update()
            elif tok == "numgen":
                self._numgen()
            elif tok == "mark" and self.peek(1) == "set":
                self._mark_set()
            else:
                self._match()
        return self.rule

    def _update(self) -> None:
        self.i += 1
        name = self.next()
        if not name.startswith("@") or self.braced() != ["ip saddr"]:
            raise self.fail("update other than '@set { ip saddr }'")
        self.rule.remembers += (name[1:],)
        self.rule.actions.append(lambda s: CONTINUE)

    def _numgen(self) -> None:
        self.i += 1
        self.expect("random", "mod")
        n = int(self.next())
        self.expect("vmap")
        table: dict[int, Verdict] = {}
        for item in self.braced():
            key, _, verdict = item.partition(" : ")
            table[int(key)] = self.verdict_of(verdict)
        self.rule.actions.append(lambda s: table.get(s.take(n), MISS))

    def _mark_set(self) -> None:
        self.i += 2
        self.expect("mark")
        op, bits = self.next(), int(self.next(), 0)
        if op not in ("or", "xor"):
            raise self.fail(f"mark set mark {op}")

        def act(s: PacketState) -> Verdict:
            s.mark = s.mark | bits if op == "or" else s.mark ^ bits
            return CONTINUE
        self.rule.actions.append(act)

    def _selector(self) -> tuple[str, Selector, str]:
        """(kind, how to read it from the packet, implied protocol or "")."""
        tok = self.next()
        if tok == "ip" and self.peek() in ("saddr", "daddr"):
            field_ = self.next()
            return "addr", (lambda s: s.src) if field_ == "saddr" else (lambda s: s.dst), ""
        if tok in ("th", "tcp", "udp", "sctp") and self.peek() == "dport":
            self.i += 1
            return "port", lambda s: str(s.dport), "" if tok == "th" else tok
        if tok == "meta" and self.peek() == "l4proto":
            self.i += 1
            return "proto", lambda s: s.protocol, ""
        if tok == "ct" and self.peek() == "state":
            self.i += 1
            return "ctstate", lambda s: "new", ""  # the tracer follows a new connection's first packet
        if tok == "fib" and self.peek() in ("saddr", "daddr") and self.peek(1) == "type":
            field_ = self.next()
            self.i += 1
            return "fibtype", ((lambda s: "local" if s.is_local(s.src) else "unicast") if field_ == "saddr"
                               else (lambda s: "local" if s.is_local(s.dst) else "unicast")), ""
        if tok == "mark" and self.peek() == "and":
            self.i += 1
            bits = int(self.next(), 0)
            return "mark", lambda s: str(s.mark & bits), ""
        raise self.fail(f"expression {tok!r}")

    def _match(self) -> None:
        kinds, selectors, protos = [], [], []
        while True:
            kind, sel, proto = self._selector()
            kinds.append(kind)
            selectors.append(sel)
            protos.append(proto)
            if self.peek() != ".":
                break
            self.i += 1
        for proto in filter(None, protos):  # "tcp dport" also means "meta l4proto tcp"
            self.rule.matches.append(protocol_is(proto))
        if self.peek() == "vmap":
            self.i += 1
            self._vmap(kinds, selectors)
            return
        if len(kinds) != 1:
            raise self.fail("a concatenation outside a vmap lookup")
        negated = self.peek() == "!="
        if self.peek() in ("!=", "=="):
            self.i += 1
        test = self._value_test(kinds[0], negated)
        sel = selectors[0]
        self.rule.matches.append((lambda s: not test(sel(s))) if negated else (lambda s: test(sel(s))))

    def _vmap(self, kinds: list[str], selectors: list[Selector]) -> None:
        name = self.next()
        if not name.startswith("@") or name[1:] not in self.sets:
            raise self.fail(f"vmap {name!r} (a named verdict map expected)")
        vmap = self.sets[name[1:]]
        if not vmap.is_map or vmap.kinds != kinds:
            raise self.fail(f"lookup of {kinds} in {vmap.name!r} ({vmap.kinds})")
        table = {key: self.verdict_of(v) for key, v in vmap.elements.items()}
        self.rule.actions.append(lambda s: table.get(tuple(sel(s) for sel in selectors), MISS))

    def _value_test(self, kind: str, negated: bool = False) -> Callable[[str], bool]:
        if self.peek() == "{":
            tests = [self._literal_test(kind, item) for item in self.braced()]
            return lambda v: any(t(v) for t in tests)
        tok = self.next()
        if tok.startswith("@"):
            s = self.sets.get(tok[1:])
            if s is None or s.is_map or s.kinds != [kind]:
                raise self.fail(f"set {tok!r} for a {kind} match")
            if s.dynamic:
                if kind != "addr" or negated:
                    raise self.fail(f"{'!= ' if negated else ''}dynamic set {tok!r} of {kind}")
                # An affinity set: the tracer's affinity state says who is in it.
                name = s.name
                self.rule.matches.append(lambda st: st.remembered(name))
                return lambda v: True
            keys = {k[0] for k in s.elements}
            return lambda v: v in keys
        return self._literal_test(kind, tok)

    def _literal_test(self, kind: str, text: str) -> Callable[[str], bool]:
        if kind == "addr":
            try:
                net = ipaddress.IPv4Network(text, strict=False)
            except ValueError:
                raise self.fail(f"address {text!r}") from None
            return lambda v: ipaddress.IPv4Address(v) in net
        if kind == "ctstate":
            states = set(text.split(","))
            if not states <= {"new", "established", "related", "invalid", "untracked"}:
                raise self.fail(f"ct state {text!r}")
            return lambda v: v in states
        if kind == "fibtype":
            if text not in ("local", "unicast"):
                raise self.fail(f"fib type {text!r}")
            return lambda v: v == text
        if kind == "mark":
            value = str(int(text, 0))
            return lambda v: v == value
        value = _normal(kind, text, self.number)
        return lambda v: v == value
