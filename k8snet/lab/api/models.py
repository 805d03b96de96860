"""The Kubernetes schema as the installed ``kubernetes`` client's models know it.

Every generated model class (``kubernetes.client.models.V1PodSpec`` …) carries
``openapi_types`` (python attribute → type string such as ``List[V1Container]``)
and ``attribute_map`` (python attribute → JSON name). This module turns them into
a JSON-name keyed view that schema checks and strategic merge patch walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import kubernetes.client.models as _models

from k8snet.lab.api.resources import Resource

# Kinds whose model class is not simply V1<Kind>.
_MODEL_NAMES = {("v1", "Event"): "CoreV1Event", ("events.k8s.io/v1", "Event"): "EventsV1Event",
                ("v1", "Endpoints"): "V1Endpoints"}
_LIST = re.compile(r"^(?:List|list)\[(.+)\]$")
_DICT = re.compile(r"^(?:Dict|dict)\[(?:str|string), *(.+)\]$|^dict\(str, *(.+)\)$")


@dataclass(frozen=True)
class FieldType:
    """``kind`` is "model", "list", "dict" or "scalar"; ``item`` the element type of
    lists and dicts; ``model`` the class name for models; ``name`` the scalar type
    (``str``, ``int``, ``bool``, ``datetime``, ``bytes``, ``object`` = anything)."""

    kind: str
    name: str = ""
    item: FieldType | None = None


def parse_type(text: str) -> FieldType:
    text = text.strip()
    m = _LIST.match(text)
    if m:
        return FieldType("list", item=parse_type(m.group(1)))
    m = _DICT.match(text)
    if m:
        return FieldType("dict", item=parse_type(m.group(1) or m.group(2)))
    if hasattr(_models, text) and hasattr(getattr(_models, text), "openapi_types"):
        return FieldType("model", name=text)
    return FieldType("scalar", name=text)


@cache
def fields(model: str) -> dict[str, FieldType]:
    """JSON field name → type of one model class."""
    cls = getattr(_models, model)
    amap = cls.attribute_map
    return {amap[attr]: parse_type(t) for attr, t in cls.openapi_types.items()}


def model_for(res: Resource) -> str | None:
    """The model class name of a resource's kind, or None if the client lacks it."""
    name = _MODEL_NAMES.get((res.api_version, res.kind), f"{res.version.capitalize()}{res.kind}")
    return name if hasattr(_models, name) else None


def model_for_kind(api_version: str, kind: str) -> str | None:
    version = api_version.rsplit("/", 1)[-1]
    name = _MODEL_NAMES.get((api_version, kind), f"{version.capitalize()}{kind}")
    return name if hasattr(_models, name) else None
