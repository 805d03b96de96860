"""``iptables-restore`` text as :mod:`.iptables` renders it -> a :class:`tracer.ParsedRuleset`.

Understands the matches and targets that renderer writes (``iptables-save``'s own
spelling differs in places, e.g. ``-m recent --set --name X --mask ... --rsource``, and
such lines are refused): ``-p``, ``-s``/``-d`` with masks and ``!``, ``--dport``, and the
modules comment, tcp/udp/sctp, statistic (random), recent (``--set`` /
``--rcheck``), conntrack (``--ctstate``), addrtype, mark; targets: a user chain
(``-j``) or ``-g``, ACCEPT, DROP, REJECT, RETURN, MARK (``--or-mark``/``--xor-mark``/
``--set-xmark``), DNAT ``--to-destination``, MASQUERADE. Anything else raises
:class:`tracer.TracerError` naming the line.
"""

from __future__ import annotations

import ipaddress
import shlex

from .tracer import (
    CONTINUE,
    BaseChain,
    Match,
    PacketState,
    ParsedRuleset,
    Rule,
    TracerError,
    Verdict,
    gives,
    protocol_is,
)

# Built-in chain -> (hook, priority of its table's hook): nat's dstnat -100, filter 0,
# nat's srcnat (INPUT, POSTROUTING) 100.
BUILTIN = {
    ("nat", "PREROUTING"): ("prerouting", -100), ("nat", "OUTPUT"): ("output", -100),
    ("nat", "INPUT"): ("input", 100), ("nat", "POSTROUTING"): ("postrouting", 100),
    ("filter", "INPUT"): ("input", 0), ("filter", "FORWARD"): ("forward", 0), ("filter", "OUTPUT"): ("output", 0),
}
TERMINAL = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return"}
MODULES = {"comment", "tcp", "udp", "sctp", "statistic", "recent", "conntrack", "addrtype", "mark"}
CT_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"}


def parse_iptables(text: str) -> ParsedRuleset:
    rs = ParsedRuleset(mode="iptables")
    table = ""
    pending: list[tuple[int, str, str]] = []  # rules, parsed once every chain is declared
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and "] " in line:
            line = line.split("] ", 1)[1]  # iptables-save -c counters
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            if table not in ("nat", "filter"):
                raise TracerError(f"iptables line {number}: table {table!r} is not modelled")
        elif line == "COMMIT":
            table = ""
        elif line.startswith(":"):
            name = line[1:].split()[0]
            rs.chains.setdefault((table, name), [])
            if (table, name) in BUILTIN:
                hook, prio = BUILTIN[(table, name)]
                rs.base_chains.append(BaseChain(hook, prio, table, name))
            elif line.split()[1] != "-":
                raise TracerError(f"iptables line {number}: {name!r} is not a built-in chain of {table!r}")
        elif line.startswith("-A "):
            if not table:
                raise TracerError(f"iptables line {number}: a rule outside a table")
            pending.append((number, table, line))
        else:
            raise TracerError(f"iptables line {number}: cannot parse {line!r}")
    for number, table, line in pending:
        rule = _parse_rule(rs, table, line, number)
        rs.chains[(table, rule.chain)].append(rule)
    return rs


def _network(text: str, number: int) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise TracerError(f"iptables line {number}: not an IPv4 address or network: {text!r}") from None


def _negate(match: Match, negated: bool) -> Match:
    return (lambda s: not match(s)) if negated else match


def _parse_rule(rs: ParsedRuleset, table: str, line: str, number: int) -> Rule:
    try:
        tokens = shlex.split(line)
    except ValueError as err:
        raise TracerError(f"iptables line {number}: {err}") from None
    chain = tokens[1]
    if (table, chain) not in rs.chains:
        raise TracerError(f"iptables line {number}: chain {chain!r} is not declared in table {table!r}")
    rule = Rule(table, chain, line)
    i, negated, module = 2, False, ""

    def value() -> str:
        nonlocal i
        if i + 1 >= len(tokens):
            raise TracerError(f"iptables line {number}: {tokens[i]} needs a value")
        i += 1
        return tokens[i]

    def fail(what: str) -> TracerError:
        return TracerError(f"iptables line {number}: {what} is not modelled by the tracer: {line}")

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            negated = True
            i += 1
            continue
        if tok == "-m":
            module = value()
            if module not in MODULES:
                raise fail(f"match module {module!r}")
        elif tok == "--comment" and module == "comment":
            value()
        elif tok == "-p":
            proto = value().lower()
            rule.matches.append(_negate(protocol_is(proto), negated))
        elif tok in ("-s", "-d"):
            net = _network(value(), number)
            attr = "src" if tok == "-s" else "dst"
            rule.matches.append(_negate(_address_in(attr, net), negated))
        elif tok == "--dport" and module in ("tcp", "udp", "sctp"):
            port = int(value())
            rule.matches.append(_negate(_dport_is(module, port), negated))
        elif tok == "--mode" and module == "statistic":
            if value() != "random":
                raise fail("a statistic mode other than random")
        elif tok == "--probability" and module == "statistic":
            rule.matches.append(_negate(_chance(float(value())), negated))
        elif tok == "--name" and module == "recent":
            name = value()
            rule.matches.append(_recent(rule, name, tokens, i, number, line))
            i = _skip_recent_options(tokens, i + 1) - 1
        elif tok == "--ctstate" and module == "conntrack":
            text = value()
            states = set(text.split(","))
            if not states <= CT_STATES:
                raise fail(f"conntrack state {text!r}")
            # The tracer follows the first packet of a new connection.
            rule.matches.append(_negate(_constant("NEW" in states), negated))
        elif tok in ("--dst-type", "--src-type") and module == "addrtype":
            if value() != "LOCAL":
                raise fail(f"addrtype {tokens[i]!r}")
            attr = "dst" if tok == "--dst-type" else "src"
            rule.matches.append(_negate(_is_local(attr), negated))
        elif tok == "--mark" and module == "mark":
            mark, _, mask = value().partition("/")
            rule.matches.append(_negate(_mark_is(int(mark, 0), int(mask or "0xffffffff", 0)), negated))
        elif tok in ("-j", "-g"):
            i = _target(rs, rule, tok, tokens, i + 1, number, fail)
            continue
        else:
            raise fail(f"option {tok!r}" + (f" (module {module})" if module else ""))
        negated = False
        i += 1
    return rule


def _address_in(attr: str, net: ipaddress.IPv4Network) -> Match:
    """-s / -d: the packet's ``attr`` ("src" or "dst") is in ``net``."""
    return lambda s: ipaddress.IPv4Address(getattr(s, attr)) in net


def _dport_is(protocol: str, port: int) -> Match:
    return lambda s: s.protocol == protocol and s.dport == port


def _chance(probability: float) -> Match:
    return lambda s: s.chance(probability)


def _constant(result: bool) -> Match:
    return lambda s: result


def _is_local(attr: str) -> Match:
    """--src-type / --dst-type LOCAL."""
    return lambda s: s.is_local(getattr(s, attr))


def _mark_is(mark: int, mask: int) -> Match:
    return lambda s: s.mark & mask == mark


def _recent(rule: Rule, name: str, tokens: list[str], i: int, number: int, line: str) -> Match:
    options = tokens[i + 1:_skip_recent_options(tokens, i + 1)]
    if "--set" in options:
        rule.remembers += (name,)
        return lambda s: True  # adds the source to the list; always matches
    if "--rcheck" in options:
        return lambda s: s.remembered(name)  # --seconds: the tracer's affinity state is live by definition
    raise TracerError(f"iptables line {number}: -m recent without --set or --rcheck: {line}")


def _skip_recent_options(tokens: list[str], i: int) -> int:
    while i < len(tokens) and tokens[i] in ("--set", "--rcheck", "--reap", "--seconds", "--rsource"):
        i += 2 if tokens[i] == "--seconds" else 1
    return i


def _target(rs: ParsedRuleset, rule: Rule, flag: str, tokens: list[str], i: int, number: int, fail) -> int:
    if i >= len(tokens):
        raise TracerError(f"iptables line {number}: {flag} needs a target")
    target, opts = tokens[i], tokens[i + 1:]
    if (rule.table, target) in rs.chains:
        if opts:
            raise fail(f"options after a jump to {target}")
        verdict = Verdict("goto" if flag == "-g" else "jump", target)
        rule.actions.append(gives(verdict))
        return len(tokens)
    if flag == "-g":
        raise TracerError(f"iptables line {number}: -g to {target!r}, which is not a chain of {rule.table!r}")
    if target in TERMINAL:
        if target == "REJECT" and opts not in ([], ["--reject-with", "icmp-port-unreachable"]):
            raise fail(f"REJECT {' '.join(opts)}")
        if target != "REJECT" and opts:
            raise fail(f"{target} {' '.join(opts)}")
        verdict = Verdict(TERMINAL[target])
        rule.actions.append(gives(verdict))
    elif target == "MARK" and len(opts) == 2 and opts[0] in ("--or-mark", "--xor-mark"):
        bits = int(opts[1], 0)
        rule.actions.append(_or_mark(bits) if opts[0] == "--or-mark" else _xor_mark(bits))
    elif target == "DNAT" and len(opts) == 2 and opts[0] == "--to-destination" and rule.table == "nat":
        rule.dnat = opts[1]
        rule.actions.append(gives(Verdict("dnat", opts[1])))
    elif target == "MASQUERADE" and opts in ([], ["--random-fully"]) and rule.table == "nat":
        rule.actions.append(gives(Verdict("masquerade")))
    else:
        raise fail(f"target {' '.join([target, *opts])!r}")
    return len(tokens)


def _or_mark(bits: int):
    def act(s: PacketState) -> Verdict:
        s.mark |= bits
        return CONTINUE
    return act


def _xor_mark(bits: int):
    def act(s: PacketState) -> Verdict:
        s.mark ^= bits
        return CONTINUE
    return act
