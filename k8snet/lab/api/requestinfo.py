"""What an HTTP request asks for, in authorization terms (apiserver's
RequestInfoFactory): the verb, and the resource or the non-resource path.

It reads the path alone, before routing: a caller who may not see a resource gets
403 whether or not it exists, as from kube-apiserver.
"""

from __future__ import annotations

from typing import Mapping

from ..errors import ApiError, forbidden
from .identity import UserInfo
from .rbac import Attributes, forbidden_message

_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


def request_attributes(method: str, parts: list[str], query: Mapping[str, str]) -> Attributes:
    """``parts`` are the path's segments (``["api", "v1", "namespaces", "ns", "pods"]``)."""
    path = "/" + "/".join(parts)
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:  # /api, /apis/<group>/<version>, /version, /openapi/... : non-resource paths
        return Attributes(method.lower(), resource_request=False, path=path)
    verb = _VERBS.get(method, method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if (query.get("watch") or "").lower() in ("true", "1") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    field_selector = ""
    if verb in ("list", "watch"):  # a list of one object by name is authorized as that name
        field_selector = query.get("fieldSelector") or ""
        name = selected_value(field_selector, "metadata.name")
    return Attributes(verb, True, namespace, group, resource, subresource, name, path, field_selector)


def selected_value(selector: str, field: str) -> str:
    """The value a field selector requires ``field`` to equal (``=`` or ``==``), else ""."""
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if sep and not key.endswith("!") and key.strip() == field:
            return value.lstrip("=").strip()
    return ""


def denied(user: UserInfo, attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 kube-apiserver answers for a request its authorizers did not allow."""
    message = forbidden_message(user.name, attrs) + (f": {reason}" if reason else "")
    if not attrs.resource_request:
        return forbidden("", "", "", message)
    return forbidden(attrs.api_group, attrs.resource, attrs.name, message)
