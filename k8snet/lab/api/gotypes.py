"""The type check kube-apiserver gets for free from decoding JSON into Go structs.

A ``replicas: "2"``, ``"data": {"k": 5}`` or ``"ownerReferences": "x"`` never
reaches validation on a real server: ``json.Unmarshal`` fails and the request is a
400 ``<Kind> in version "v1" cannot be handled as a <Kind>: json: cannot unmarshal
string into Go struct field DeploymentSpec.spec.replicas of type int32``. The lab
keeps objects as JSON values, so it checks them against the schema (the
``kubernetes`` client's models, see :mod:`models`) the same way, including the
int32/int64 ranges, before anything else looks at them.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ApiError, bad_request
from . import models
from .models import FieldType
from .resources import Resource

_INT32 = (-(2 ** 31), 2 ** 31 - 1)
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
# The int64 fields of the built-in API types (every other integer field is int32).
_INT64_FIELDS = frozenset({
    "activeDeadlineSeconds", "terminationGracePeriodSeconds", "deletionGracePeriodSeconds", "generation",
    "observedGeneration", "runAsUser", "runAsGroup", "fsGroup", "supplementalGroups", "expirationSeconds",
    "gracePeriodSeconds", "seconds", "revision", "tolerationSeconds", "startingDeadlineSeconds",
})
_MODEL_PREFIX = re.compile(r"^[A-Za-z]*?(V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$")


class _Mismatch(Exception):
    def __init__(self, got: str, struct: str, path: str, want: str):
        super().__init__(f"json: cannot unmarshal {got} into Go struct field {struct}.{path} of type {want}")


def _go_model(name: str) -> tuple[str, str]:
    """(package-qualified type, bare struct name): V1PodSpec → ("v1.PodSpec", "PodSpec")."""
    m = _MODEL_PREFIX.match(name)
    if not m:
        return name, name
    return f"{m.group(1).lower()}.{m.group(2)}", m.group(2)


def _go_type(ftype: FieldType, field: str) -> str:
    if ftype.kind == "model":
        return _go_model(ftype.name)[0]
    if ftype.kind == "list":
        return "[]" + (_go_type(ftype.item, field) if ftype.item else "interface {}")
    if ftype.kind == "dict":
        return "map[string]" + (_go_type(ftype.item, field) if ftype.item else "interface {}")
    return {"str": "string", "bool": "bool", "float": "float64", "datetime": "string", "bytes": "[]uint8",
            "int": "int64" if field in _INT64_FIELDS else "int32"}.get(ftype.name, "interface {}")


def _json_kind(value: Any) -> str:
    """How Go's decoder names a JSON value in its error (numbers with their text when
    they do not fit an integer)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check(value: Any, ftype: FieldType, struct: str, path: str, field: str) -> None:
    if value is None:
        return  # null decodes to the zero value of anything
    kind = _json_kind(value)
    if ftype.kind == "model":
        if kind != "object":
            raise _Mismatch(kind, struct, path, _go_type(ftype, field))
        inner = _go_model(ftype.name)[1]
        known = models.fields(ftype.name)
        for key, sub in value.items():
            if key in known:
                _check(sub, known[key], inner if path else struct, f"{path}.{key}" if path else key, key)
        return
    if ftype.kind in ("list", "dict"):
        if kind != ("array" if ftype.kind == "list" else "object"):
            raise _Mismatch(kind, struct, path, _go_type(ftype, field))
        if ftype.item is not None:
            for item in (value if ftype.kind == "list" else value.values()):
                _check(item, ftype.item, struct, path, field)
        return
    want = ftype.name
    if want == "int":
        if kind != "number":
            raise _Mismatch(kind, struct, path, _go_type(ftype, field))
        low, high = _INT64 if field in _INT64_FIELDS else _INT32
        if isinstance(value, float) or not low <= value <= high:
            raise _Mismatch(f"number {value}", struct, path, _go_type(ftype, field))
    elif want == "float":
        if kind != "number":
            raise _Mismatch(kind, struct, path, "float64")
    elif want in ("str", "datetime", "bytes"):
        if kind != "string":
            raise _Mismatch(kind, struct, path, _go_type(ftype, field))
    elif want == "bool" and kind != "bool":
        raise _Mismatch(kind, struct, path, "bool")


def check(res: Resource, obj: Any) -> None:
    """400 BadRequest when ``obj`` could not be decoded into the kind's Go type."""
    model = models.model_for(res)
    if model is None or not isinstance(obj, dict):
        return
    try:
        _check(obj, FieldType("model", name=model), _go_model(model)[1], "", "")
    except _Mismatch as err:
        raise cannot_handle(res, str(err)) from None


def cannot_handle(res: Resource, detail: str) -> ApiError:
    return bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {detail}')
