"""Partial iptables syncs: the ``iptables-restore --noflush`` input from one ruleset to the next.

A full restore of both tables with 10,000 Services costs about a second inside
``iptables-restore`` and the kernel (iptables-nft), whatever changed. Like
kube-proxy's iptables proxier since 1.27 (KEP-3453, MinimizeIPTablesRestore), a
resync therefore writes only the chains of the Services that changed and deletes
the chains of those that went.

One difference: kube-proxy rewrites KUBE-SERVICES (and the other shared jump
lists) whole on every partial sync. Here a ``--noflush`` rewrite of a 10,000-rule
KUBE-SERVICES costs 0.8 s, as much as the full restore, so a shared chain is
*edited* instead: ``-D`` by rule spec for rules that went, ``-I <position>`` for
new ones, positions taken from the full ruleset so the chain ends up in exactly
the order a full restore gives (its last rule, the jump to KUBE-NODEPORTS, stays
last). Each table is one restore transaction; within it references stay valid:
chains are declared (created, or flushed) first, then rules leave shared chains,
service chains get their rules, shared chains get theirs, and stale chains go.
"""

from __future__ import annotations

from .iptables import BUILTIN_CHAINS, TABLE_ORDER, IptablesRuleset, TablePart

# A shared chain is rewritten whole rather than edited when edits would touch more
# than this share of its rules (a rewrite then costs about the same and says less).
REWRITE_SHARE = 0.5


def iptables_transaction(old: IptablesRuleset, new: IptablesRuleset) -> str | None:
    """``--noflush`` restore input that turns the applied ``old`` into ``new``.

    "" when nothing changed; None when the node's fixed rules differ (another node,
    another configuration), so the caller restores the whole tables instead.
    """
    if old.node != new.node:
        return None
    gone = [parts for sp, parts in old.services.items() if sp not in new.services]
    fresh = [parts for sp, parts in new.services.items() if sp not in old.services]
    if not gone and not fresh and list(old.services) == list(new.services):
        return ""
    blocks = []
    for table in TABLE_ORDER:
        lines = _table_changes(table, old, new, [p[table] for p in gone], [p[table] for p in fresh])
        if lines:
            blocks.append("\n".join([f"*{table}", *lines, "COMMIT"]) + "\n")
    return "".join(blocks)


def _owned(parts: list[TablePart]) -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {}
    for part in parts:
        chains.update(part.owned())
    return chains


def _table_changes(table: str, old: IptablesRuleset, new: IptablesRuleset,
                   gone: list[TablePart], fresh: list[TablePart]) -> list[str]:
    before, after = _owned(gone), _owned(fresh)
    # A changed Service is one part gone and one new, with the same chain names:
    # only chains whose rules differ are rewritten (an unchanged endpoint's stays).
    write = [c for c, rules in after.items() if before.get(c) != rules]
    stale = [c for c in before if c not in after]
    declare, deletes, rewrites, inserts = [], [], [], []
    old_shared, new_shared = old.shared(table), new.shared(table)
    for chain, rules in new_shared.items():
        edits = chain_edits(chain, old_shared.get(chain, []), rules)
        if edits is None:
            declare.append(chain)
            rewrites += rules
        else:
            deletes += edits[0]
            inserts += edits[1]
    lines = [_declaration(table, c) for c in (*write, *stale, *declare)]  # creates, or flushes
    lines += deletes
    for c in write:
        lines += after[c]
    lines += rewrites
    lines += inserts
    lines += [f"-X {c}" for c in stale]
    return lines


def _declaration(table: str, chain: str) -> str:
    policy = "ACCEPT" if chain in BUILTIN_CHAINS[table] else "-"
    return f":{chain} {policy} [0:0]"


def chain_edits(chain: str, old: list[str], new: list[str]) -> tuple[list[str], list[str]] | None:
    """(``-D`` lines, ``-I`` lines) that turn chain ``old`` into ``new``, applied in that
    order; None when the chain is better rewritten whole (duplicate rules make ``-D`` by
    spec ambiguous, kept rules changed order, or most rules change)."""
    if old == new:
        return [], []
    old_set, new_set = set(old), set(new)
    if len(old_set) != len(old) or len(new_set) != len(new):
        return None
    if [r for r in old if r in new_set] != [r for r in new if r in old_set]:
        return None
    deletes = ["-D" + r[2:] for r in old if r not in new_set]  # "-A CHAIN spec" -> "-D CHAIN spec"
    # Once the deletes are done the kept rules are in their final relative order, so
    # inserting each new rule at its final (1-based) position, lowest first, gives ``new``.
    skip = len(chain) + 4  # "-A CHAIN "
    inserts = [f"-I {chain} {i} {r[skip:]}" for i, r in enumerate(new, 1) if r not in old_set]
    if len(deletes) + len(inserts) > REWRITE_SHARE * max(len(new), 1):
        return None
    return deletes, inserts
