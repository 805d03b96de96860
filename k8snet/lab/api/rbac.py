"""RBAC's rule matching, as pkg/apis/rbac/v1/evaluation_helpers.go decides it.

A request is described by :class:`Attributes` (apiserver's ``authorizer.Attributes``):
a resource request (verb, API group, resource, subresource, name, namespace) or a
non-resource one (verb and path). A PolicyRule allows it when every part matches,
``*`` matching anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..contracts import Obj

ALL = "*"
GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Attributes:
    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    # a list or watch's fieldSelector, as sent (the Node authorizer reads spec.nodeName)
    field_selector: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and (ALL in values or wanted in values)


def resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    for candidate in rule.get("resources") or []:
        if candidate in (ALL, combined):
            return True
        # "*/status" covers the status of every resource
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Obj, name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


def non_resource_url_matches(rule: Obj, path: str) -> bool:
    for candidate in rule.get("nonResourceURLs") or []:
        if candidate in (ALL, path):
            return True
        if candidate.endswith("*") and path.startswith(candidate[:-1]):
            return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return non_resource_url_matches(rule, attrs.path)
    return (_has(rule.get("apiGroups"), attrs.api_group)
            and resource_matches(rule, attrs.combined_resource, attrs.subresource)
            and resource_name_matches(rule, attrs.name))


def subject_matches(subject: Obj, user: str, groups: tuple[str, ...], binding_namespace: str) -> bool:
    """pkg/registry/rbac/validation's appliesToUser."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user == name
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user == f"system:serviceaccount:{namespace}:{name}"
    return False


def describe_subject(subject: Obj) -> str:
    """How the RBAC authorizer names a subject in its reasons."""
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace", "")}"'
    return f'{kind} "{name}"'


def forbidden_message(user: str, attrs: Attributes) -> str:
    """apiserver's forbiddenMessage, after the ``<resource> is forbidden:`` prefix."""
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (f'User "{user}" cannot {attrs.verb} resource "{attrs.combined_resource}" '
            f'in API group "{attrs.api_group}" {where}')


def merge_rules(rule_lists: list[list[Obj]]) -> list[Obj]:
    """The union of several roles' rules, each rule once, in first-seen order
    (the ClusterRole aggregation controller's)."""
    seen: list[Obj] = []
    for rules in rule_lists:
        for rule in rules:
            if rule not in seen:
                seen.append(rule)
    return seen
