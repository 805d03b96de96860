"""Partial nftables syncs: the transaction from one table to the next.

Reloading the whole table costs about a second with 10,000 services, mostly
inside libnftables and the kernel, whatever changed. Like kube-proxy's nftables
proxier (partial sync, kubernetes#126013), a resync therefore sends only the
difference: map elements added or removed, chains created, rewritten (``flush``
then ``add rule``) or deleted. The commands are ordered so that every reference
is valid at each step, and they run as one transaction, so packets see either
the old rules or the new ones.

The difference is worked out from the fragments that left and arrived
(:meth:`.NftTable.changes_since`), not from the whole tables: with 10,000
services, comparing every chain and map element cost more than the kernel's share
of a one-service change. That works because each chain belongs to one fragment
(a service's chains are named after it; the skeleton's shared chains get no rules
from services), so only shared set and map elements need care: those are counted
table-wide, and one goes when its last fragment does (the cluster IP of a
multi-port service stays while any of its ports is left).
"""

from __future__ import annotations

from .nftables import TABLE, ElementKey, NftRuleset, NftTable


def _key(element: str) -> str:
    """A map element's key ("10.96.0.10 . udp . 53" of "... : goto x"); a set element itself."""
    return element.split(" : ", 1)[0]


def _declaration(decl: str) -> str:
    # "set type ipv4_addr; flags ...; timeout 10s" -> "{ type ipv4_addr; flags ...; timeout 10s; }"
    return "{ " + decl.split(" ", 1)[1] + "; }"


def nft_transaction(old: NftTable, new: NftTable) -> str | None:
    """Commands that turn the applied table ``old`` into ``new``.

    "" when nothing changed; None when the change is not one a partial sync
    handles (another node, so other base and shared chains; a set's declaration
    changed), so the caller reloads the whole table instead.
    """
    if old.node != new.node:
        return None
    gone, fresh = new.changes_since(old)
    before, after = NftRuleset.merge(gone), NftRuleset.merge(fresh)
    if any(before.sets[name] != decl for name, decl in after.sets.items() if name in before.sets):
        return None
    added = [c for c in after.chains if c not in before.chains]
    removed = [c for c in before.chains if c not in after.chains]
    changed = [c for c, rules in after.chains.items() if c in before.chains and before.chains[c] != rules]

    t = f"ip {TABLE}"
    out: list[str] = []
    # 1. What new rules and elements will refer to: new sets, then new chains.
    out += [f"add {decl.split()[0]} {t} {name} {_declaration(decl)}"
            for name, decl in after.sets.items() if name not in before.sets]
    out += [f"add chain {t} {c}" for c in added]
    # 2. Chain contents, so that removed chains lose their last references.
    for c in changed:
        out.append(f"flush chain {t} {c}")
    for c in changed + added:
        out += [f"add rule {t} {c} {rule}" for rule in after.chains[c]]
    # 3. Elements: a changed value (another verdict) is a delete plus an add.
    for name, (dropped, fresh_elems) in _element_changes(new.element_counts(), before, after).items():
        if dropped:
            out.append(f"delete element {t} {name} {{ {', '.join(dropped)} }}")
        if fresh_elems:
            out.append(f"add element {t} {name} {{ {', '.join(fresh_elems)} }}")
    # 4. Now unreferenced: removed chains (emptied first, as they may jump to
    #    each other) and the sets only their rules used.
    out += [f"flush chain {t} {c}" for c in removed]
    out += [f"delete chain {t} {c}" for c in removed]
    out += [f"delete {decl.split()[0]} {t} {name}" for name, decl in before.sets.items() if name not in after.sets]
    return "\n".join(out) + "\n" if out else ""


def _element_changes(counts: dict[ElementKey, int], before: NftRuleset, after: NftRuleset
                     ) -> dict[str, tuple[list[str], list[str]]]:
    """Per set or map: (keys to delete, elements to add) when the fragments ``before``
    give way to ``after`` and the whole new table holds ``counts`` of each element."""
    step: dict[ElementKey, int] = {}
    before.count_elements(step, -1)
    after.count_elements(step, 1)
    changes: dict[str, tuple[list[str], list[str]]] = {}
    for (name, elem), delta in step.items():
        now = counts.get((name, elem), 0)
        was = now - delta
        if was and not now:
            changes.setdefault(name, ([], []))[0].append(_key(elem))
        elif now and not was:
            changes.setdefault(name, ([], []))[1].append(elem)
    return changes
