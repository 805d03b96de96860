"""Validation of Roles, ClusterRoles and their bindings (pkg/apis/rbac/validation)."""

from __future__ import annotations

from typing import Any

from ..contracts import Obj
from .fielderrors import FieldErrors

RBAC_GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _rule(errs: FieldErrors, path: str, rule: Any, namespaced: bool) -> None:
    if not isinstance(rule, dict):
        errs.required(path)
        return
    if not rule.get("verbs"):
        errs.required(f"{path}.verbs", "verbs must contain at least one value")
    if rule.get("nonResourceURLs"):
        if namespaced:
            errs.invalid(f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                         "namespaced rules cannot apply to non-resource URLs")
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.invalid(f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                         "rules cannot apply to both regular resources and non-resource URLs")
        return
    if not rule.get("apiGroups"):
        errs.required(f"{path}.apiGroups", "resource rules must supply at least one api group")
    if not rule.get("resources"):
        errs.required(f"{path}.resources", "resource rules must supply at least one resource")


def _rules(errs: FieldErrors, role: Obj, namespaced: bool) -> None:
    for i, rule in enumerate(role.get("rules") or []):
        _rule(errs, f"rules[{i}]", rule, namespaced)


def validate_role(errs: FieldErrors, role: Obj) -> None:
    _rules(errs, role, namespaced=True)


def validate_cluster_role(errs: FieldErrors, role: Obj) -> None:
    _rules(errs, role, namespaced=False)


def _binding(errs: FieldErrors, binding: Obj, namespaced: bool) -> None:
    ref = binding.get("roleRef")
    if not isinstance(ref, dict):
        errs.required("roleRef")
        ref = {}
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP])
    kinds = ["ClusterRole", "Role"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.not_supported("roleRef.kind", ref.get("kind", ""), kinds)
    if not ref.get("name"):
        errs.required("roleRef.name")
    for i, subject in enumerate(binding.get("subjects") or []):
        path = f"subjects[{i}]"
        if not isinstance(subject, dict):
            errs.required(path)
            continue
        if not subject.get("name"):
            errs.required(f"{path}.name")
        kind = subject.get("kind")
        if kind not in SUBJECT_KINDS:
            errs.not_supported(f"{path}.kind", kind or "", list(SUBJECT_KINDS))
        elif kind == "ServiceAccount":
            if subject.get("apiGroup"):
                errs.not_supported(f"{path}.apiGroup", subject["apiGroup"], [""])
            if not namespaced and not subject.get("namespace"):
                errs.required(f"{path}.namespace")
        elif subject.get("apiGroup") != RBAC_GROUP:
            errs.not_supported(f"{path}.apiGroup", subject.get("apiGroup", ""), [RBAC_GROUP])


def validate_role_binding(errs: FieldErrors, binding: Obj) -> None:
    _binding(errs, binding, namespaced=True)


def validate_cluster_role_binding(errs: FieldErrors, binding: Obj) -> None:
    _binding(errs, binding, namespaced=False)


def validate_binding_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    if new.get("roleRef") != old.get("roleRef"):
        errs.invalid("roleRef", new.get("roleRef"), "cannot change roleRef")
