"""Kinds with no rules of their own: the generic strategy serves them as they are."""

from __future__ import annotations

from ..apiresource import Resource
from .strategy import Strategy

# node heartbeats (kube-node-lease), as the kubelet writes them; `kubectl describe node` reads them
LEASES = Strategy(Resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", True))


def _review(group: str, plural: str, kind: str, namespaced: bool = False) -> Strategy:
    """A review: answered at once from the authorizer, never stored (create only)."""
    return Strategy(Resource(group, "v1", plural, plural[:-1], kind, namespaced, verbs=("create",)))


REVIEWS = (
    _review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    _review("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    _review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
    _review("authorization.k8s.io", "localsubjectaccessreviews", "LocalSubjectAccessReview", namespaced=True),
    _review("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
)
