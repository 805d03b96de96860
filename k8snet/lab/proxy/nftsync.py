"""Partial nftables syncs: the ``nft -f`` transaction from one ruleset to the next.

Reloading the whole table costs about a second with 10,000 services, mostly
inside ``nft`` and the kernel, whatever changed. Like kube-proxy's nftables
proxier (partial sync, kubernetes#126013), a resync therefore sends only the
difference: map elements added or removed, chains created, rewritten (``flush``
then ``add rule``) or deleted. The commands are ordered so that every reference
is valid at each step, and ``nft -f`` runs them as one transaction, so packets
see either the old rules or the new ones.
"""

from __future__ import annotations

from .nftables import TABLE, NftRuleset


def _keyed(elements: list[str]) -> dict[str, str]:
    """Map elements by key ("10.96.0.10 . udp . 53" of "... : goto x"); set elements by themselves."""
    return {e.split(" : ", 1)[0]: e for e in elements}


def _declaration(decl: str) -> str:
    # "set type ipv4_addr; flags ...; timeout 10s" -> "{ type ipv4_addr; flags ...; timeout 10s; }"
    return "{ " + decl.split(" ", 1)[1] + "; }"


def nft_transaction(old: NftRuleset, new: NftRuleset) -> str | None:
    """Commands that turn the applied ``old`` ruleset into ``new``.

    "" when nothing changed; None when the change is not one a partial sync
    handles (a set's declaration or a base chain changed), so the caller reloads
    the whole table instead.
    """
    if any(old.sets[name] != decl for name, decl in new.sets.items() if name in old.sets):
        return None
    added = [c for c in new.chains if c not in old.chains]
    removed = [c for c in old.chains if c not in new.chains]
    changed = [c for c, rules in new.chains.items() if c in old.chains and old.chains[c] != rules]
    if any(rules and rules[0].startswith("type ") for c in changed + removed
           for rules in (old.chains[c],)):
        return None

    t = f"ip {TABLE}"
    out: list[str] = []
    # 1. What new rules and elements will refer to: new sets, then new chains.
    out += [f"add {decl.split()[0]} {t} {name} {_declaration(decl)}"
            for name, decl in new.sets.items() if name not in old.sets]
    out += [f"add chain {t} {c}" for c in added]
    # 2. Chain contents, so that removed chains lose their last references.
    for c in changed:
        out.append(f"flush chain {t} {c}")
    for c in changed + added:
        out += [f"add rule {t} {c} {rule}" for rule in new.chains[c]]
    # 3. Elements: a changed value (another verdict) is a delete plus an add.
    for name in dict.fromkeys([*old.elements, *new.elements]):
        before, after = _keyed(old.elements.get(name, [])), _keyed(new.elements.get(name, []))
        gone = [k for k, e in before.items() if after.get(k) != e]
        fresh = [e for k, e in after.items() if before.get(k) != e]
        if gone:
            out.append(f"delete element {t} {name} {{ {', '.join(gone)} }}")
        if fresh:
            out.append(f"add element {t} {name} {{ {', '.join(fresh)} }}")
    # 4. Now unreferenced: removed chains (emptied first, as they may jump to
    #    each other) and the sets only their rules used.
    out += [f"flush chain {t} {c}" for c in removed]
    out += [f"delete chain {t} {c}" for c in removed]
    out += [f"delete {decl.split()[0]} {t} {name}" for name, decl in old.sets.items() if name not in new.sets]
    return "\n".join(out) + "\n" if out else ""


def nft_ruleset_count(rs: NftRuleset) -> int:
    """Rules plus map/set elements, like :func:`nftables.nft_rule_count` on its text."""
    rules = sum(len(r) - (1 if r and r[0].startswith("type ") else 0) for r in rs.chains.values())
    return rules + sum(len(e) for e in rs.elements.values())
