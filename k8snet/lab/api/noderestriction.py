"""The NodeRestriction admission plugin (plugin/pkg/admission/noderestriction): what a
kubelet may write, beyond what the Node authorizer lets every node do.

A node may change only its own Node (not its taints, nor labels outside the kubelet's
own set), the status of pods bound to it (not their labels), delete or evict only
pods bound to it, create only mirror pods of its own that use no other object, ask
tokens only for pods bound to it, and touch only its own Lease. Every refusal is a
403 with the real plugin's reason.
"""

from __future__ import annotations

from typing import Callable

from .. import errors
from ..contracts import Obj
from .core import forbidden
from .identity import UserInfo
from .nodeauthorizer import NODE_LEASE_NAMESPACE, node_name
from .podrefs import pod_refs
from .resources import Resource

Getter = Callable[[str, str, str], "Obj | None"]  # (key, namespace, name) -> stored object

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# kubeletapis.IsKubeletLabel: what a kubelet may set on its own Node
_KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/instance-type", "kubernetes.io/os", "kubernetes.io/arch",
    "beta.kubernetes.io/instance-type", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "node.kubernetes.io/instance-type"})
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"


def _label_namespace(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    return prefix if slash else ""


def _suffix_match(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def _is_kubelet_label(key: str) -> bool:
    namespace = _label_namespace(key)
    return key in _KUBELET_LABELS or any(_suffix_match(namespace, d) for d in _KUBELET_LABEL_NAMESPACES)


def forbidden_labels(new: dict[str, str], old: dict[str, str]) -> list[str]:
    """getForbiddenLabels of the labels added, removed or changed, sorted."""
    modified = {k for k in {*new, *old} if new.get(k) != old.get(k) or (k in new) != (k in old)}
    bad = set()
    for key in modified:
        namespace = _label_namespace(key)
        if _suffix_match(namespace, _NODE_RESTRICTION_NAMESPACE):
            bad.add(key)
        if (_suffix_match(namespace, "kubernetes.io") or _suffix_match(namespace, "k8s.io")) \
                and not _is_kubelet_label(key):
            bad.add(key)
    return sorted(bad)


def _labels(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _node_of(pod: Obj | None) -> str:
    return str(((pod or {}).get("spec") or {}).get("nodeName") or "")


class NodeRestriction:
    """The write guard (see core.WriteGuard) for nodes' own requests."""

    def __init__(self, get: Getter):
        self.get = get

    def __call__(self, user: UserInfo, operation: str, res: Resource, namespace: str, name: str,
                 new: Obj | None, old: Obj | None, subresource: str | None) -> None:
        node = node_name(user)
        if node is None:
            return  # only nodes are restricted
        refuse = lambda why: forbidden(res, name, why)  # noqa: E731
        if not node:
            raise refuse(f'could not determine node from user "{user.name}"')
        if res.key == "pods":
            self._pod(node, operation, name, new, old, subresource, refuse)
        elif res.key == "nodes":
            self._node(node, operation, name, new, old, refuse)
        elif res.key == "serviceaccounts" and operation == "CREATE" and subresource == "token":
            self._token(node, namespace, (new or {}).get("spec") or {}, refuse)
        elif res.key == "coordination.k8s.io/leases":
            if namespace != NODE_LEASE_NAMESPACE:
                raise refuse(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
            if name != node:
                raise refuse("can only access node lease with the same name as the requesting node")
        elif res.key == "persistentvolumeclaims" and subresource != "status":
            raise refuse("may only update PVC status")

    def _pod(self, node: str, operation: str, name: str, new: Obj | None, old: Obj | None,
             subresource: str | None, refuse: Callable[[str], errors.ApiError]) -> None:
        if subresource == "status":
            if operation != "UPDATE":
                raise refuse(f'unexpected operation "{operation}"')
            if _node_of(old) != node:
                raise refuse(f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
            if _labels(new) != _labels(old):
                raise refuse(f'node "{node}" cannot update labels through pod status')
            return
        if subresource:
            raise refuse(f'unexpected pod subresource "{subresource}", only \'status\' and \'eviction\' are allowed')
        if operation == "DELETE":
            if _node_of(old) != node:
                raise refuse(f'node "{node}" can only delete pods with spec.nodeName set to itself')
        elif operation == "CREATE":
            self._mirror_pod(node, new or {}, refuse)
        else:
            raise refuse(f'unexpected operation "{operation}", node "{node}" can only create and delete mirror pods')

    def _mirror_pod(self, node: str, pod: Obj, refuse: Callable[[str], errors.ApiError]) -> None:
        meta = pod.get("metadata") or {}
        if MIRROR_ANNOTATION not in (meta.get("annotations") or {}):
            raise refuse(f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only create '
                         "mirror pods")
        if _node_of(pod) != node:
            raise refuse(f'node "{node}" can only create pods with spec.nodeName set to itself')
        owners = meta.get("ownerReferences") or []
        if len(owners) > 1:
            raise refuse(f'node "{node}" can only create pods with a single owner reference set to itself')
        owner = owners[0] if owners else {}
        if not owners or (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) != ("v1", "Node", node):
            raise refuse(f'node "{node}" can only create pods with an owner reference set to itself')
        if not owner.get("controller"):
            raise refuse(f'node "{node}" can only create pods with a controller owner reference set to itself')
        if owner.get("blockOwnerDeletion"):
            raise refuse(f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        node_obj = self.get("nodes", "", node)
        if node_obj is None:
            raise errors.not_found("", "nodes", node)
        if owner.get("uid") != node_obj["metadata"].get("uid"):
            raise refuse(f"node {node} UID mismatch: expected {owner.get('uid')} got {node_obj['metadata'].get('uid')}")
        spec = pod.get("spec") or {}
        if spec.get("serviceAccountName"):
            raise refuse(f'node "{node}" can not create pods that reference a service account')
        kinds = {kind for kind, _ in pod_refs(pod) if kind != "serviceaccounts"}
        for kind in ("secrets", "configmaps", "persistentvolumeclaims"):
            if kind in kinds:
                raise refuse(f'node "{node}" can not create pods that reference {kind}')

    @staticmethod
    def _node(node: str, operation: str, name: str, new: Obj | None, old: Obj | None,
              refuse: Callable[[str], errors.ApiError]) -> None:
        if name != node:
            raise refuse(f'node "{node}" is not allowed to modify node "{name}"')
        if operation == "CREATE":
            bad = forbidden_labels(_labels(new), {})
            if bad:
                raise refuse(f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
        elif operation == "UPDATE":
            if ((new or {}).get("spec") or {}).get("taints") != ((old or {}).get("spec") or {}).get("taints"):
                raise refuse(f'node "{node}" is not allowed to modify taints')
            bad = forbidden_labels(_labels(new), _labels(old))
            if bad:
                raise refuse(f"is not allowed to modify labels: {', '.join(bad)}")

    def _token(self, node: str, namespace: str, spec: Obj, refuse: Callable[[str], errors.ApiError]) -> None:
        ref = spec.get("boundObjectRef") or {}
        if not isinstance(ref, dict) or ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" \
                or not ref.get("name"):
            raise refuse("node requested token not bound to a pod")
        if not ref.get("uid"):
            raise refuse("node requested token with a pod binding without a uid")
        pod = self.get("pods", namespace, str(ref["name"]))
        if pod is None:
            raise errors.not_found("", "pods", str(ref["name"]))
        if ref["uid"] != pod["metadata"].get("uid"):
            raise refuse(f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                         "The object might have been deleted and then recreated")
        if _node_of(pod) != node:
            raise refuse("node requested token bound to a pod scheduled on a different node")
