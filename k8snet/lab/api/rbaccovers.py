"""Whether one set of PolicyRules covers another, and how the rules it misses are
named (component-helpers' auth/rbac/validation ``Covers`` and kube-apiserver's
``CompactRules`` and ``CompactString``).

The escalation checks (escalation.py) use it: a user may grant only rules their own
rules cover. Each rule to grant is broken into atoms (one group, resource, verb and
name, or one URL and verb); an atom is covered when a single owner rule covers it.
"""

from __future__ import annotations

import json

from ..contracts import Obj
from .rbac import ALL


def breakdown(rule: Obj) -> list[Obj]:
    """``BreakdownRule``: the atoms of a rule, in the order the real server lists them."""
    atoms: list[Obj] = []
    names = rule.get("resourceNames") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in rule.get("verbs") or []:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                atoms.extend([{**base, "resourceNames": [n]} for n in names] if names else [base])
    for url in rule.get("nonResourceURLs") or []:
        for verb in rule.get("verbs") or []:
            atoms.append({"nonResourceURLs": [url], "verbs": [verb]})
    return atoms


def _has_all(owned: list[str], wanted: list[str]) -> bool:
    return all(w in owned for w in wanted)


def _resources_cover(owned: list[str], wanted: list[str]) -> bool:
    if ALL in owned or _has_all(owned, wanted):
        return True
    for resource in wanted:
        if resource in owned:
            continue
        # "*/status" covers the status of every resource, a plain resource only itself
        _, slash, sub = resource.partition("/")
        if not slash or f"*/{sub}" not in owned:
            return False
    return True


def _url_covers(owner: str, path: str) -> bool:
    return owner == path or (owner.endswith("*") and path.startswith(owner.rstrip("*")))


def rule_covers(owner: Obj, atom: Obj) -> bool:
    """``ruleCovers``: whether one owner rule covers an atom of :func:`breakdown`."""
    verbs, groups = owner.get("verbs") or [], owner.get("apiGroups") or []
    owner_names, atom_names = owner.get("resourceNames") or [], atom.get("resourceNames") or []
    return ((ALL in verbs or _has_all(verbs, atom.get("verbs") or []))
            and (ALL in groups or _has_all(groups, atom.get("apiGroups") or []))
            and _resources_cover(owner.get("resources") or [], atom.get("resources") or [])
            and all(any(_url_covers(o, p) for o in owner.get("nonResourceURLs") or [])
                    for p in atom.get("nonResourceURLs") or [])
            # a rule limited to names never covers one that is not
            and (not owner_names or (bool(atom_names) and _has_all(owner_names, atom_names))))


def uncovered(owner_rules: list[Obj], rules: list[Obj]) -> list[Obj]:
    """``Covers``: the atoms of ``rules`` that no rule of ``owner_rules`` covers."""
    return [atom for rule in rules for atom in breakdown(rule)
            if not any(rule_covers(owner, atom) for owner in owner_rules)]


def compact(rules: list[Obj]) -> list[Obj]:
    """``CompactRules``: rules on one group and resource (and at most one name) merged
    into one rule with all their verbs; the others as they are."""
    merged: dict[tuple[str, str, str | None], Obj] = {}
    others: list[Obj] = []
    for rule in rules:
        names = rule.get("resourceNames") or []
        simple = (len(rule.get("apiGroups") or []) == 1 and len(rule.get("resources") or []) == 1
                  and len(names) <= 1 and not rule.get("nonResourceURLs"))
        if not simple:
            others.append(rule)
            continue
        key = (rule["apiGroups"][0], rule["resources"][0], names[0] if names else None)
        if key in merged:
            verbs = merged[key]["verbs"]
            verbs.extend(v for v in rule.get("verbs") or [] if v not in verbs)
        else:
            merged[key] = {**rule, "verbs": list(rule.get("verbs") or [])}
    return others + list(merged.values())


def go_quote(value: str) -> str:
    """A string as Go's ``%q`` prints it (the same as JSON for printable text)."""
    return json.dumps(value, ensure_ascii=False)


def go_quoted(values: list[str]) -> str:
    """A string slice as Go's ``%q`` prints it: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def compact_string(rule: Obj) -> str:
    """``CompactString``: ``{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}``."""
    parts = [f"{label}:{go_quoted(rule[field])}" for field, label in (
        ("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
        ("resourceNames", "ResourceNames"), ("verbs", "Verbs")) if rule.get(field)]
    return "{" + ", ".join(parts) + "}"


def missing_description(missing: list[Obj]) -> str:
    """The missing rules compacted, one a line, sorted (a Go ``sets.String``'s List)."""
    return "\n".join(sorted({compact_string(r) for r in compact(missing)}))
