"""The Node authorizer (plugin/pkg/auth/authorizer/node, ``--authorization-mode=Node``):
what a kubelet (user ``system:node:<name>`` in group ``system:nodes``) may do.

- Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccount tokens: only those a
  pod bound to the node references (the real one walks a graph it keeps of
  node <- pod <- secret/configmap/pvc/serviceaccount edges; the lab asks the store
  for the node's pods instead, an index brought up to date when pods change);
- Pods: get a pod bound to it, list/watch only with ``spec.nodeName=<node>``; Nodes:
  read only its own (``AuthorizeNodeWithSelectors``, on by default since 1.34);
  Leases: its own in ``kube-node-lease``;
- everything else: the static node rules (the ``system:node`` ClusterRole's).

What a node may write (its own Node, its pods' status) is NodeRestriction's job
(noderestriction.py): the authorizer lets every node update nodes and pods/status.
A "no opinion" carries the real reason; the next authorizer (RBAC) has its say.
"""

from __future__ import annotations

import json
from typing import Callable

from ..contracts import Obj
from . import rbac
from .identity import NODE_PREFIX, NODES, UserInfo
from .podrefs import Ref, pod_refs
from .rbac import Attributes
from .requestinfo import selected_value

NODE_LEASE_NAMESPACE = "kube-node-lease"
Opinion = tuple[bool | None, str]  # (True: allow, None: no opinion), reason


def node_name(user: UserInfo) -> str | None:
    """nodeidentifier.NodeIdentity: "" for a node user it cannot name, None if not a node."""
    if NODES not in user.groups or not user.name.startswith(NODE_PREFIX):
        return None
    return user.name[len(NODE_PREFIX):]


class NodeGraph:
    """For each node, what its pods reference: {node: {(namespace, resource, name)}}.

    Built from the store's pod texts when pods changed; a pod whose text is the one
    seen last time keeps its edges undecoded. (Decoding every pod again on each
    change made a 100-pod start-up quadratic: every pod's token request came after
    some pod changed.)"""

    def __init__(self, pods: Callable[[], list[tuple[tuple[str, str], str]]], generation: Callable[[], int]):
        self._pods = pods
        self._generation = generation
        self._built_at: int | None = None
        self._edges: dict[str, set[tuple[str, str, str]]] = {}
        # (namespace, name) -> (the text decoded, its node or None, its edges)
        self._per_pod: dict[tuple[str, str], tuple[str, str | None, set[tuple[str, str, str]]]] = {}

    def related(self, node: str, namespace: str, resource: str, name: str) -> bool:
        generation = self._generation()
        if generation != self._built_at:
            per_pod = {}
            for key, text in self._pods():
                seen = self._per_pod.get(key)
                per_pod[key] = seen if seen is not None and seen[0] == text else _pod_edges(key, text)
            edges: dict[str, set[tuple[str, str, str]]] = {}
            for _, bound, pod_edges in per_pod.values():
                if bound:
                    edges.setdefault(bound, set()).update(pod_edges)
            self._per_pod, self._edges, self._built_at = per_pod, edges, generation
        return (namespace, resource, name) in self._edges.get(node, set())


def _pod_edges(key: tuple[str, str], text: str) -> tuple[str, str | None, set[tuple[str, str, str]]]:
    pod = json.loads(text)
    bound = (pod.get("spec") or {}).get("nodeName") or None
    refs: set[Ref] = {*pod_refs(pod), ("pods", key[1])} if bound else set()
    return text, bound, {(key[0], r, n) for r, n in refs}


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph, node_rules: list[Obj]):
        self.graph = graph
        self.node_rules = node_rules

    def authorize(self, user: UserInfo, attrs: Attributes) -> Opinion:
        node = node_name(user)
        if node is None:
            return None, ""
        if not node:
            return None, f'unknown node for user "{user.name}"'
        if attrs.resource_request and attrs.api_group == "":
            if attrs.resource in ("secrets", "configmaps"):
                return self._read_namespaced(node, attrs)
            if attrs.resource == "persistentvolumeclaims":
                return self._get(node, attrs)
            if attrs.resource == "serviceaccounts":
                return self._create_token(node, attrs)
            if attrs.resource == "nodes":
                return self._node(node, attrs)
            if attrs.resource == "pods":
                return self._pod(node, attrs)
        if attrs.resource_request and (attrs.api_group, attrs.resource) == ("coordination.k8s.io", "leases"):
            return self._lease(node, attrs)
        if any(rbac.rule_allows(rule, attrs) for rule in self.node_rules):
            return True, ""
        return None, ""

    def _related(self, node: str, attrs: Attributes) -> Opinion:
        """``authorize``: the named object must be one the node's pods use."""
        if not attrs.name:
            return None, "No Object name found"
        if self.graph.related(node, attrs.namespace, attrs.resource, attrs.name):
            return True, ""
        return None, f"no relationship found between node '{node}' and this object"

    def _read_namespaced(self, node: str, attrs: Attributes) -> Opinion:
        if attrs.verb not in ("get", "list", "watch"):
            return None, "can only read resources of this type"
        if attrs.subresource:
            return None, "cannot read subresource"
        if not attrs.namespace:
            return None, "can only read namespaced object of this type"
        return self._related(node, attrs)

    def _get(self, node: str, attrs: Attributes) -> Opinion:
        if attrs.verb != "get":
            return None, "can only get individual resources of this type"
        if attrs.subresource:
            return None, "cannot get subresource"
        return self._related(node, attrs)

    def _create_token(self, node: str, attrs: Attributes) -> Opinion:
        if attrs.verb != "create" or not attrs.name:
            return None, "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return None, "can only create token subresource of serviceaccount"
        return self._related(node, attrs)

    @staticmethod
    def _node(node: str, attrs: Attributes) -> Opinion:
        if not attrs.subresource:
            if attrs.verb in ("create", "update", "patch"):
                return True, ""  # NodeRestriction keeps it to its own Node
            if attrs.verb in ("get", "list", "watch"):
                if attrs.name == node:
                    return True, ""
                if not attrs.name:
                    return None, f"node '{node}' cannot read all nodes, only its own Node object"
                return None, f"node '{node}' cannot read '{attrs.name}', only its own Node object"
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return True, ""
        return None, ""

    def _pod(self, node: str, attrs: Attributes) -> Opinion:
        if not attrs.subresource:
            if attrs.verb == "get":
                return self._get(node, attrs)
            if attrs.verb in ("list", "watch"):
                if selected_value(attrs.field_selector, "spec.nodeName") == node:
                    return True, ""
                if attrs.name:
                    return self._related(node, attrs)
                return None, "can only list/watch pods with spec.nodeName field selector"
            if attrs.verb in ("create", "delete"):
                return True, ""  # mirror pods; NodeRestriction keeps them to its own
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return True, ""
        elif attrs.subresource == "eviction" and attrs.verb == "create":
            return True, ""
        return None, ""

    @staticmethod
    def _lease(node: str, attrs: Attributes) -> Opinion:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return None, "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return None, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        # the name is not known on a create; NodeRestriction checks it there
        if attrs.verb != "create" and attrs.name != node:
            return None, "can only access node lease with the same name as the requesting node"
        return True, ""
