"""The minimal OpenAPI v3 that kubectl's default validation needs
(its check lives in k8s.io/cli-runtime's pkg/resource/query_param_verifier_v3.go).

kubectl apply / create -f / edit / replace first ask ``/openapi/v3`` whether the
PATCH operation of the object's group-version-kind takes a ``fieldValidation``
query parameter. When it does, kubectl skips client-side schema validation and
lets the server validate (``?fieldValidation=Strict``). No ``requestBody`` is
declared, so kubectl builds strategic-merge patches from its compiled-in types
instead of from schemas we do not serve. ``/openapi/v2`` is :mod:`openapiv2`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import GROUP_VERSIONS, RESOURCES, Resource

Obj = dict[str, Any]

_FIELD_VALIDATION = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: ``api/v1`` or ``apis/<g>/<v>`` (no leading slash)."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def object_path(r: Resource) -> str:
    base = "/" + gv_path(r.group, r.version)
    if r.namespaced:
        return f"{base}/namespaces/{{namespace}}/{r.plural}/{{name}}"
    return f"{base}/{r.plural}/{{name}}"


def document(group: str, version: str, kubernetes_version: str) -> Obj | None:
    """The OpenAPI v3 document of one group-version, or None if not served."""
    resources = [r for r in RESOURCES if r.group == group and r.version == version]
    if not resources:
        return None
    paths = {
        object_path(r): {"patch": {
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "parameters": [dict(_FIELD_VALIDATION)],
        }}
        for r in resources}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": kubernetes_version}, "paths": paths}


def _hash(doc: Obj) -> str:
    """A cache buster that changes whenever the document does (kubectl caches by it)."""
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16].upper()


def index(kubernetes_version: str) -> Obj:
    """``GET /openapi/v3``."""
    paths = {}
    for group, version in GROUP_VERSIONS:
        path = gv_path(group, version)
        doc = document(group, version, kubernetes_version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(doc or {})}"}
    return {"paths": paths}
