"""PATCH: RFC 6902 JSON patch, RFC 7386 merge patch, Kubernetes strategic merge
patch (``apimachinery/pkg/util/strategicpatch``) and a simplified server-side apply.

Strategic merge needs each list's strategy and merge key. They are the
``patchStrategy``/``patchMergeKey`` struct tags of k8s.io/api, listed in
:data:`PATCH_META` by model class; the model tree itself (which field holds which
type) comes from the ``kubernetes`` client (:mod:`k8snet.lab.api.models`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from k8snet.lab.api import models
from k8snet.lab.api.resources import Resource
from k8snet.lab.contracts import Obj
from k8snet.lab.errors import ApiError, bad_request
from k8snet.lab.timefmt import rfc3339

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"

# (model, json field) → (strategies, merge key); from the struct tags in
# api/core/v1/types.go, api/apps/v1/types.go and apimachinery meta/v1/types.go.
_CONTAINER = {"ports": ("merge", "containerPort"), "env": ("merge", "name"),
              "volumeMounts": ("merge", "mountPath"), "volumeDevices": ("merge", "devicePath")}
PATCH_META: dict[str, dict[str, tuple[str, str]]] = {
    "V1ObjectMeta": {"ownerReferences": ("merge", "uid"), "finalizers": ("merge", "")},
    "V1PodSpec": {"volumes": ("merge,retainKeys", "name"), "containers": ("merge", "name"),
                  "initContainers": ("merge", "name"), "ephemeralContainers": ("merge", "name"),
                  "imagePullSecrets": ("merge", "name"), "hostAliases": ("merge", "ip"),
                  "topologySpreadConstraints": ("merge", "topologyKey"),
                  "resourceClaims": ("merge,retainKeys", "name"), "schedulingGates": ("merge", "name")},
    "V1Container": _CONTAINER,
    "V1EphemeralContainer": _CONTAINER,
    "V1PodStatus": {"conditions": ("merge", "type"), "podIPs": ("merge", "ip"), "hostIPs": ("merge", "ip"),
                    "resourceClaimStatuses": ("merge", "name")},
    "V1ServiceSpec": {"ports": ("merge", "port")},
    "V1ServiceStatus": {"conditions": ("merge", "type")},
    "V1NodeSpec": {"podCIDRs": ("merge", "")},
    "V1NodeStatus": {"conditions": ("merge", "type"), "addresses": ("merge", "type")},
    "V1NamespaceStatus": {"conditions": ("merge", "type")},
    "V1DeploymentSpec": {"strategy": ("retainKeys", "")},
    "V1DeploymentStatus": {"conditions": ("merge", "type")},
    "V1ReplicaSetStatus": {"conditions": ("merge", "type")},
    "V1ServiceAccount": {"secrets": ("merge", "name")},
    "V1LoadBalancerIngress": {"ports": ("", "")},
}


def _invalid_patch(message: str) -> ApiError:
    # apiserver handlers/patch.go: NewGenericServerResponse(422, …, err.Error())
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]})


# -- RFC 7386 merge patch ---------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# -- RFC 6902 JSON patch ----------------------------------------------------------

def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _index(container: list[Any], token: str, path: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _invalid_patch(f"invalid array index {token!r} in path {path!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not allow_end):
        raise _invalid_patch(f"index out of range: {path}")
    return i


def _walk(doc: Any, tokens: list[str], path: str, op: str) -> Any:
    cur = doc
    for t in tokens:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, path, allow_end=False)]
        else:
            raise _invalid_patch(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return cur


def _get(doc: Any, path: str, op: str) -> Any:
    return _walk(doc, _pointer(path), path, op)


def _remove(doc: Any, path: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        return None, doc
    parent = _walk(doc, tokens[:-1], path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _invalid_patch(f"Unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise _invalid_patch(f'{op} operation does not apply: doc is missing path: "{path}": missing value')


def _add(doc: Any, path: str, value: Any, op: str = "add", replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _invalid_patch(f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, path, allow_end=False)] = value
        else:
            parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise _invalid_patch(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return doc


# json-patch v4's words for an operation without its "path" or "from" (a JSON null counts
# as missing there too): add, remove and copy say only "missing value" for the path, the
# others pass on the getter's error
_MISSING = {"path": "operation missing path field: missing value",
            "from": "operation, missing from field: missing value"}


def _op_pointer(op: dict[str, Any], field: str, kind: str) -> str:
    """An operation's ``path`` or ``from`` (Operation.Path and From): without one, Apply
    fails and the API server answers 422 with json-patch's message, like any failed patch."""
    value = op.get(field)
    if isinstance(value, str):
        return value
    why = "missing value" if field == "path" and kind in ("add", "remove", "copy") else _MISSING[field]
    raise _invalid_patch(f"{kind} operation failed to decode {field}: {why}")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request("json: cannot unmarshal into Go value of type jsonpatch.Operation")
        kind = op["op"] if isinstance(op.get("op"), str) else "unknown"  # Operation.Kind
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _invalid_patch(f"{kind} operation has no value: missing value")
        if kind == "add":
            doc = _add(doc, _op_pointer(op, "path", kind), copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, _op_pointer(op, "path", kind))
        elif kind == "replace":
            doc = _add(doc, _op_pointer(op, "path", kind), copy.deepcopy(op["value"]), "replace", replace=True)
        elif kind == "move":  # "from" is read first, as json-patch does
            doc, value = _remove(doc, _op_pointer(op, "from", kind), "move")
            doc = _add(doc, _op_pointer(op, "path", kind), value, "move")
        elif kind == "copy":
            value = copy.deepcopy(_get(doc, _op_pointer(op, "from", kind), "copy"))
            doc = _add(doc, _op_pointer(op, "path", kind), value, "copy")
        elif kind == "test":
            path = _op_pointer(op, "path", kind)
            if _get(doc, path, "test") != op["value"]:
                raise _invalid_patch(f"testing value {path} failed: test failed")
        else:
            raise _invalid_patch(f"Unexpected kind: {kind}")
    return doc


# -- strategic merge patch ------------------------------------------------------

class _Schema:
    """Where a value sits in the model tree (None = unknown: plain merge/replace)."""

    def __init__(self, model: str | None):
        self.model = model

    def field(self, key: str) -> tuple[str, str, _Schema]:
        """(strategies, merge key, schema of the field's value or its list items)."""
        if self.model is None:
            return "", "", _Schema(None)
        strategy, merge_key = PATCH_META.get(self.model, {}).get(key, ("", ""))
        ftype = models.fields(self.model).get(key)
        while ftype is not None and ftype.kind in ("list", "dict"):
            ftype = ftype.item
        sub = ftype.name if ftype is not None and ftype.kind == "model" else None
        return strategy, merge_key, _Schema(sub)


def _strip_directives(value: Any) -> Any:
    """A value with no original counterpart, merged into nothing: directives
    consumed, nulls dropped."""
    if isinstance(value, dict):
        if value.get(DIRECTIVE) == "delete":
            return None
        return {k: _strip_directives(v) for k, v in value.items()
                if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value
                if not (isinstance(v, dict) and DIRECTIVE in v and len(v) == 1) and
                not (isinstance(v, dict) and v.get(DIRECTIVE) == "delete")]
    return value


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: _Schema) -> dict[str, Any]:
    patch = dict(patch)
    directive = patch.pop(DIRECTIVE, None)
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise bad_request(f"unknown patch type: {directive} in map: {json.dumps(patch)}")
    original = dict(original)
    retain = patch.pop(RETAIN_KEYS, None)
    if retain is not None:
        if not isinstance(retain, list):
            raise bad_request(f"invalid type for {RETAIN_KEYS} directive")
        for k in list(original):
            if k not in retain:
                del original[k]
    orders = {k[len(SET_ORDER):]: patch.pop(k) for k in list(patch) if k.startswith(SET_ORDER)}
    for k in list(patch):
        v = patch[k]
        if k.startswith(DELETE_PRIMITIVE):
            field = k[len(DELETE_PRIMITIVE):]
            if isinstance(original.get(field), list) and isinstance(v, list):
                original[field] = [x for x in original[field] if x not in v]
            continue
        if v is None:
            original.pop(k, None)
            continue
        strategy, merge_key, sub = schema.field(k)
        strategies = strategy.split(",")
        cur = original.get(k)
        if isinstance(v, dict):
            base = cur if isinstance(cur, dict) and "replace" not in strategies else {}
            original[k] = _merge_map(base, v, sub)
        elif isinstance(v, list) and "merge" in strategies:
            original[k] = _merge_list(cur if isinstance(cur, list) else [], v, sub, merge_key)
        elif isinstance(v, list):
            original[k] = _strip_directives(v)  # atomic lists are replaced whole
        else:
            original[k] = v
    for field, order in orders.items():
        if isinstance(original.get(field), list):
            original[field] = _apply_order(original[field], order, schema.field(field)[1])
    return original


def _merge_list(original: list[Any], patch: list[Any], schema: _Schema, merge_key: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get(DIRECTIVE) == "replace" for p in patch):
        return _strip_directives([p for p in patch if not (isinstance(p, dict) and p.get(DIRECTIVE) == "replace")])
    if not merge_key:  # a set of primitives (finalizers, podCIDRs)
        out = list(original)
        for p in patch:
            if not isinstance(p, dict) and p not in out:
                out.append(p)
        return out
    out = [copy.deepcopy(o) for o in original]
    for p in patch:
        if not isinstance(p, dict):
            raise bad_request(f"cannot merge list item {json.dumps(p)} without a {merge_key!r} key")
        directive = p.get(DIRECTIVE)
        if directive == "merge" and len(p) == 1:
            continue
        if merge_key not in p:
            raise bad_request(f"map: {json.dumps(p)} does not contain declared merge key: {merge_key}")
        key = p[merge_key]
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(merge_key) == key), None)
        if directive == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(merge_key) == key)]
        elif idx is None:
            out.append(_merge_map({}, p, schema))
        else:
            out[idx] = _merge_map(out[idx], p, schema)
    return out


def _apply_order(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """``$setElementOrder``: listed elements in the given order; elements only the
    server knows keep their relative place after them."""
    def key(x: Any) -> Any:
        return json.dumps(x.get(merge_key) if merge_key and isinstance(x, dict) else x, sort_keys=True)
    wanted = [key(o) for o in order]
    rank = {k: i for i, k in enumerate(wanted)}
    listed = sorted((x for x in items if key(x) in rank), key=lambda x: rank[key(x)])
    rest = [x for x in items if key(x) not in rank]
    return listed + rest


def strategic_merge(original: Obj, patch: Any, model: str | None) -> Obj:
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    return _merge_map(copy.deepcopy(original), patch, _Schema(model))


# -- entry points -------------------------------------------------------------------

def apply_patch(current: Obj, patch: Any, patch_type: str, res: Resource) -> Obj:
    """The patched object (not yet admitted). ``patch_type``: json | merge | strategic."""
    if patch_type == "json":
        out = json_patch(current, patch)
    elif patch_type == "merge":
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        out = merge_patch(current, patch)
    elif patch_type == "strategic":
        out = strategic_merge(current, patch, models.model_for(res))
    else:
        raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {patch_type!r}")
    if not isinstance(out, dict):
        raise _invalid_patch("the patch did not produce an object")
    for key in ("apiVersion", "kind"):
        if out.get(key) not in (None, current.get(key)):
            raise bad_request(f"{key} in the patch does not match the object")
    return out


def server_side_apply(current: Obj | None, applied: Obj, res: Resource, field_manager: str,
                      force: bool) -> Obj:
    """Simplified SSA: the applied configuration merged onto the live object with
    the strategic merge keys (created if absent); ownership is recorded but never
    conflicts, and fields dropped from the manifest are not pruned."""
    if not field_manager:
        raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                       "is required for apply patch",
                       {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                           {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
                            "field": "fieldManager"}]})
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the apply patch must be an object")
    for key, want in (("apiVersion", res.api_version), ("kind", res.kind)):
        if applied.get(key) not in (None, want):
            raise bad_request(f"{key} of the applied configuration must be {want!r}, not {applied[key]!r}")
    base = copy.deepcopy(current) if current is not None else {}
    out = strategic_merge(base, _strip_directives(applied), models.model_for(res))
    meta = out.setdefault("metadata", {})
    entry = {"manager": field_manager, "operation": "Apply", "apiVersion": res.api_version,
             "time": rfc3339(),
             "fieldsType": "FieldsV1", "fieldsV1": {}}
    managed = [m for m in (meta.get("managedFields") or [])
               if not (m.get("manager") == field_manager and m.get("operation") == "Apply")]
    meta["managedFields"] = managed + [entry]
    return out
