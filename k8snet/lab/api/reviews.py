"""Access reviews (``kubectl auth can-i``, ``kubectl auth whoami``): questions to the
authorizer, answered at once and never stored, as pkg/registry/authorization does.

- SelfSubjectAccessReview: may *I* do this? (``can-i``; with ``--as``, the
  impersonated user asks);
- SubjectAccessReview / LocalSubjectAccessReview: may *that user* do this?
- SelfSubjectRulesReview: what may I do in a namespace? (``can-i --list``);
- SelfSubjectReview: who am I? (``auth whoami``).
"""

from __future__ import annotations

from typing import Any

from .. import errors
from ..contracts import Obj
from .authorizer import Authorizer
from .clone import clone
from .identity import UserInfo
from .rbac import Attributes


def _attributes(spec: Obj, kind: str) -> Attributes:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise errors.invalid("authorization.k8s.io", kind, "", [
            ("FieldValueRequired", "spec.resourceAttributes",
             "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified")])
    if non_resource is not None:
        return Attributes(str(non_resource.get("verb", "")), False, path=str(non_resource.get("path", "")))
    r = resource or {}  # not None here: exactly one of the two is set
    return Attributes(str(r.get("verb", "")), True, str(r.get("namespace", "")), str(r.get("group", "")),
                      str(r.get("resource", "")), str(r.get("subresource", "")), str(r.get("name", "")))


def _spec_user(spec: Obj) -> UserInfo:
    extra = spec.get("extra") or {}
    return UserInfo(str(spec.get("user", "")), tuple(str(g) for g in spec.get("groups") or []),
                    str(spec.get("uid", "")), tuple(sorted((str(k), tuple(map(str, v))) for k, v in extra.items())))


def _typed(body: Any, kind: str, group: str) -> Obj:
    if not isinstance(body, dict) or not isinstance(body.get("spec", {}), dict):
        raise errors.bad_request(f"the body must be a {kind} object")
    if body.get("kind") not in (None, kind):
        raise errors.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: the kind is {body.get("kind")}')
    obj = clone(body)
    obj["apiVersion"], obj["kind"] = f"{group}/v1", kind
    obj["metadata"] = {**(obj.get("metadata") or {}), "creationTimestamp": None}
    obj.setdefault("spec", {})
    return obj


def answer(key: str, namespace: str | None, body: Any, user: UserInfo, authorizer: Authorizer) -> Obj:
    """The review with its ``status`` filled in."""
    resource = key.split("/", 1)[1]
    if resource == "selfsubjectreviews":
        obj = _typed(body, "SelfSubjectReview", "authentication.k8s.io")
        info: Obj = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        if user.extra:
            info["extra"] = user.extra_dict()
        obj["status"] = {"userInfo": info}
        return obj
    if resource == "selfsubjectrulesreviews":
        obj = _typed(body, "SelfSubjectRulesReview", "authorization.k8s.io")
        rules = authorizer.rules_for(user, str(obj["spec"].get("namespace", "")))
        obj["status"] = {
            "resourceRules": [{k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if k in r}
                              for r in rules if "nonResourceURLs" not in r],
            "nonResourceRules": [{"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                                 for r in rules if "nonResourceURLs" in r],
            "incomplete": False}
        return obj
    kind = {"selfsubjectaccessreviews": "SelfSubjectAccessReview", "subjectaccessreviews": "SubjectAccessReview",
            "localsubjectaccessreviews": "LocalSubjectAccessReview"}[resource]
    obj = _typed(body, kind, "authorization.k8s.io")
    spec = obj["spec"]
    attrs = _attributes(spec, kind)
    if kind == "SelfSubjectAccessReview":
        subject = user
    else:
        subject = _spec_user(spec)
        if not subject.name and not subject.groups:
            raise errors.invalid("authorization.k8s.io", kind, "", [
                ("FieldValueRequired", "spec.user", "Invalid value: \"\": at least one of user or group must be specified")])
    if kind == "LocalSubjectAccessReview":
        obj["metadata"]["namespace"] = namespace
        if not attrs.resource_request or attrs.namespace != namespace:
            raise errors.invalid("authorization.k8s.io", kind, "", [
                ("FieldValueInvalid", "spec.resourceAttributes.namespace",
                 f'Invalid value: "{attrs.namespace}": must match metadata.namespace')])
    decision = authorizer.authorize(subject, attrs)
    obj["status"] = {"allowed": decision.allowed, **({"reason": decision.reason} if decision.reason else {})}
    return obj
