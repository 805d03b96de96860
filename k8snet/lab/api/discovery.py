"""API discovery documents, built from the resource table (resources.py).

Legacy shapes (``APIVersions``, ``APIGroupList``, ``APIResourceList``) for every
client, and the aggregated ``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList`` that
kubectl prefers (2 requests instead of 2 + one per group-version). kubectl uses
aggregated resources only if both ``/api`` and ``/apis`` answer aggregated, so both
come from the same table.
"""

from __future__ import annotations

from typing import Any

from .resources import GROUP_VERSIONS, RESOURCES, Resource

Obj = dict[str, Any]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether an Accept header asks for the v2 aggregated discovery format."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def api_versions(server_address: str) -> Obj:
    """``GET /api``."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _groups() -> list[str]:
    return list(dict.fromkeys(g for g, _ in GROUP_VERSIONS if g))


def _versions(group: str) -> list[str]:
    return [v for g, v in GROUP_VERSIONS if g == group]


def api_group_list() -> Obj:
    """``GET /apis``."""
    groups = []
    for group in _groups():
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in _versions(group)]
        groups.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> Obj | None:
    """``GET /apis/<group>``, or None for a group the lab does not serve."""
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def _in(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


def api_resource_list(group: str, version: str) -> Obj | None:
    """``GET /api/v1`` and ``GET /apis/<g>/<v>``, or None if not served."""
    resources = _in(group, version)
    if not resources:
        return None
    entries: list[Obj] = []
    for r in resources:
        entry: Obj = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                      "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for sub in r.subresources:
            sub_entry: Obj = {"name": f"{r.plural}/{sub.name}", "singularName": "", "namespaced": r.namespaced,
                              "kind": sub.kind, "verbs": list(sub.verbs)}
            if sub.group:
                sub_entry.update(group=sub.group, version=sub.version)
            entries.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": entries}


def _aggregated_resource(r: Resource) -> Obj:
    entry: Obj = {"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                  "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                  "verbs": list(r.verbs)}
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {"subresource": s.name,
             "responseKind": {"group": s.group if s.group else r.group, "version": s.version, "kind": s.kind},
             "verbs": list(s.verbs)}
            for s in r.subresources]
    return entry


def aggregated(core: bool) -> Obj:
    """``/api`` (core=True) or ``/apis`` as an APIGroupDiscoveryList."""
    groups = [""] if core else _groups()
    items = []
    for group in groups:
        versions = [{"version": v, "freshness": "Current",
                     "resources": [_aggregated_resource(r) for r in _in(group, v)]} for v in _versions(group)]
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
