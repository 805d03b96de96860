"""``GET /openapi/v2``: the Swagger 2.0 definitions of the served kinds.

kubectl needs them for one thing the v3 document does not cover: a ``kind: List``
file. Its query-parameter verifier always answers "unsupported" for ``v1/List``, so
``kubectl apply -f list.yaml`` validates the list client-side against the OpenAPI v2
schema, and fails with "the server could not find the requested resource" when
``/openapi/v2`` is missing. client-go asks for the gnostic protobuf form
(``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``); JSON is served to
everyone else.

Definitions come from :func:`schema.kind_schema` (the ``kubernetes`` client's models,
with patch strategies and the x-kubernetes-group-version-kind that kubectl looks
kinds up by); paths carry each kind's PATCH operation with ``fieldValidation`` like
the v3 document.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from . import openapi, schema
from .resources import RESOURCES

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what clients ask for
# What kube-openapi answers with: the "@" is not valid in a media type Go's mime parser reads.
PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
Obj = dict[str, Any]


def _v2_schema(value: Any) -> Any:
    """A v3 component schema in v2 spelling: ``#/definitions/`` refs, no allOf wrapper
    around a described ref, no v3-only extensions."""
    if isinstance(value, list):
        return [_v2_schema(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "allOf" in value and len(value["allOf"]) == 1:
        value = {**value["allOf"][0], **{k: v for k, v in value.items() if k != "allOf"}}
    out = {}
    for key, item in value.items():
        if key == "x-kubernetes-preserve-unknown-fields":
            continue
        if key == "$ref":
            out[key] = item.replace("#/components/schemas/", "#/definitions/")
        elif key == "x-kubernetes-group-version-kind":
            out[key] = item
        else:
            out[key] = _v2_schema(item)
    return out


@lru_cache(maxsize=4)
def document(kubernetes_version: str) -> str:
    """The Swagger 2.0 document as JSON text (built once: the schema never changes)."""
    definitions: Obj = {}
    for res in RESOURCES:
        for name, component in schema.kind_schema(res).items():
            definitions[name] = _v2_schema(component)
    paths: Obj = {}
    for res in RESOURCES:
        paths[openapi.object_path(res)] = {"patch": {
            "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": True}],
            "responses": {"200": {"description": "OK"}},
        }}
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": kubernetes_version},
           "paths": paths, "definitions": definitions}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


# -- the gnostic protobuf form (github.com/google/gnostic-models openapiv2/OpenAPIv2.proto) --

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode()) if text else b""


def _bool(field: int, value: bool) -> bytes:
    return _varint(field << 3) + b"\x01" if value else b""


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _named_any(name: str, value: Any) -> bytes:
    # Any{yaml=2}: JSON is YAML, which is how kube-openapi reads vendor extensions.
    return _str(1, name) + _bytes(2, _str(2, json.dumps(value) + "\n"))


def _schema(s: Obj) -> bytes:
    """Schema: _ref=1 format=2 description=4 required=19 additional_properties=21
    type=22 items=23 properties=25 vendor_extension=31."""
    out = _str(1, s.get("$ref", "")) + _str(2, s.get("format", "")) + _str(4, s.get("description", ""))
    for name in s.get("required", []):
        out += _str(19, name)
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes(21, _bytes(1, _schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes(21, _bool(2, extra) or _int(2, 0))
    if s.get("type"):
        out += _bytes(22, _str(1, s["type"]))
    if isinstance(s.get("items"), dict):
        out += _bytes(23, _bytes(1, _schema(s["items"])))
    if s.get("properties"):
        props = b"".join(_bytes(1, _str(1, k) + _bytes(2, _schema(v))) for k, v in s["properties"].items())
        out += _bytes(25, props)
    for key, value in s.items():
        if key.startswith("x-"):
            out += _bytes(31, _named_any(key, value))
    return out


def _operation(op: Obj) -> bytes:
    """Operation: parameters=8 (ParametersItem → Parameter → NonBodyParameter →
    QueryParameterSubSchema{in=2 name=4 type=6 unique_items=20}), vendor_extension=13."""
    out = b""
    for p in op.get("parameters", []):
        query = _str(2, p["in"]) + _str(4, p["name"]) + _str(6, p["type"]) + _bool(20, p.get("uniqueItems", False))
        out += _bytes(8, _bytes(1, _bytes(2, _bytes(3, query))))
    for key, value in op.items():
        if key.startswith("x-"):
            out += _bytes(13, _named_any(key, value))
    return out


@lru_cache(maxsize=4)
def protobuf(kubernetes_version: str) -> bytes:
    """Document: swagger=1 info=2{title=1 version=2} paths=8{path=2 NamedPathItem{name,
    PathItem{patch=8}}} definitions=9{NamedSchema{name=1 value=2}}."""
    doc = json.loads(document(kubernetes_version))
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    paths = b"".join(_bytes(2, _str(1, path) + _bytes(2, _bytes(8, _operation(item["patch"]))))
                     for path, item in doc["paths"].items())
    definitions = b"".join(_bytes(1, _str(1, name) + _bytes(2, _schema(s)))
                           for name, s in doc["definitions"].items())
    return _str(1, doc["swagger"]) + _bytes(2, info) + _bytes(8, paths) + _bytes(9, definitions)
