"""Which fields of an object the Kubernetes schema does not know
(``?fieldValidation=Strict|Warn``), and the kind's schema as OpenAPI v3
components, both derived from the installed ``kubernetes`` client's models."""

from __future__ import annotations

from typing import Any

from k8snet.lab.api import models
from k8snet.lab.api.models import FieldType
from k8snet.lab.api.resources import Resource
from k8snet.lab.contracts import Obj


def _walk(value: Any, ftype: FieldType | None, path: str, out: list[str]) -> None:
    if ftype is None:
        return
    if ftype.kind == "model" and isinstance(value, dict):
        known = models.fields(ftype.name)
        for key, sub in value.items():
            child = f"{path}.{key}" if path else key
            if key not in known:
                out.append(child)
            else:
                _walk(sub, known[key], child, out)
    elif ftype.kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, ftype.item, f"{path}[{i}]", out)
    elif ftype.kind == "dict" and isinstance(value, dict):
        for key, item in value.items():
            _walk(item, ftype.item, f"{path}[{key}]", out)


def unknown_fields(res: Resource, obj: Obj) -> list[str]:
    """Dotted paths (``spec.containers[0].imagee``) of fields not in the schema,
    in document order. Empty when the client has no model for the kind."""
    model = models.model_for(res)
    out: list[str] = []
    if model is not None:
        _walk(obj, FieldType("model", name=model), "", out)
    return out


def strict_error_message(res: Resource, fields: list[str]) -> str:
    """The 400 text of fieldValidation=Strict (apimachinery runtime/error.go)."""
    detail = ", ".join(f'unknown field "{f}"' for f in fields)
    return (f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: {detail}")


# -- OpenAPI v3 components ----------------------------------------------------------

_SCALAR_SCHEMAS = {
    "str": {"type": "string"}, "int": {"type": "integer", "format": "int64"}, "bool": {"type": "boolean"},
    "float": {"type": "number", "format": "double"}, "datetime": {"type": "string", "format": "date-time"},
    "bytes": {"type": "string", "format": "byte"},
}


def _ref(ftype: FieldType, todo: list[str]) -> dict[str, Any]:
    if ftype.kind == "model":
        todo.append(ftype.name)
        return {"$ref": f"#/components/schemas/{ftype.name}"}
    if ftype.kind == "list":
        return {"type": "array", "items": _ref(ftype.item, todo)} if ftype.item else {"type": "array"}
    if ftype.kind == "dict":
        return {"type": "object", "additionalProperties": _ref(ftype.item, todo)} if ftype.item else {"type": "object"}
    # "object" (IntOrString, RawExtension, FieldsV1): anything goes
    return dict(_SCALAR_SCHEMAS.get(ftype.name, {"x-kubernetes-preserve-unknown-fields": True}))


def kind_schema(res: Resource) -> dict[str, dict[str, Any]]:
    """``components.schemas`` for the kind and every model it reaches, keyed by the
    client's model name; the kind's own entry carries x-kubernetes-group-version-kind."""
    # The descriptions and required fields are only in the client's classes; serving
    # the OpenAPI document is rare enough to import them here rather than at start.
    import kubernetes.client.models as client_models

    from k8snet.lab.api.patch import PATCH_META  # merge keys for kubectl's SMP-from-schema path

    root = models.model_for(res)
    if root is None:
        return {}
    schemas: dict[str, dict[str, Any]] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        cls = getattr(client_models, name)
        props: dict[str, Any] = {}
        required = []
        for attr, json_name in cls.attribute_map.items():
            prop = _ref(models.fields(name)[json_name], todo)
            info = cls.model_fields.get(attr)
            if info is not None and info.description:
                prop = ({"allOf": [prop]} if "$ref" in prop else prop) | {"description": info.description}
            if info is not None and info.is_required():
                required.append(json_name)
            strategy, merge_key = PATCH_META.get(name, {}).get(json_name, ("", ""))
            if strategy:
                prop["x-kubernetes-patch-strategy"] = strategy
            if merge_key:
                prop["x-kubernetes-patch-merge-key"] = merge_key
            props[json_name] = prop
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if cls.__doc__:
            schema["description"] = cls.__doc__.strip().split("\n")[0]
        if required:
            schema["required"] = required
        schemas[name] = schema
    schemas[root]["x-kubernetes-group-version-kind"] = [
        {"group": res.group, "version": res.version, "kind": res.kind}]
    return schemas
