"""The Kubernetes schema as the installed ``kubernetes`` client's models know it.

Every generated model class (``kubernetes.client.models.V1PodSpec`` …) carries
``openapi_types`` (python attribute → type string such as ``List[V1Container]``)
and ``attribute_map`` (python attribute → JSON name). This module turns them into
a JSON-name keyed view that schema checks and strategic merge patch walk.

The view is read from ``kube_models.json``, a table of those two maps per model made
from the locked client (``python -m k8snet.lab.api.models`` writes it; a unit test
checks it against the installed client). Importing the client instead costs ~0.25 s
(the ``kubernetes`` package pulls in its config loaders, oauthlib, pydantic and 845
model classes) on the path from ``lab up`` to the first pod, where the API server
checks the bootstrap objects. If the installed client is another version than the
table's, the table is not trusted and the models are read from the client.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from k8snet.lab.api.resources import Resource

TABLE = Path(__file__).with_name("kube_models.json")

# Kinds whose model class is not simply V1<Kind>.
_MODEL_NAMES = {("v1", "Event"): "CoreV1Event", ("events.k8s.io/v1", "Event"): "EventsV1Event",
                ("v1", "Endpoints"): "V1Endpoints"}
_LIST = re.compile(r"^(?:List|list)\[(.+)\]$")
_DICT = re.compile(r"^(?:Dict|dict)\[(?:str|string), *(.+)\]$|^dict\(str, *(.+)\)$")

ModelTypes = dict[str, dict[str, str]]  # model class name -> JSON field name -> the client's type string


@dataclass(frozen=True)
class FieldType:
    """``kind`` is "model", "list", "dict" or "scalar"; ``item`` the element type of
    lists and dicts; ``model`` the class name for models; ``name`` the scalar type
    (``str``, ``int``, ``bool``, ``datetime``, ``bytes``, ``object`` = anything)."""

    kind: str
    name: str = ""
    item: FieldType | None = None


def client_version() -> str:
    return importlib.metadata.version("kubernetes")


def from_client() -> ModelTypes:
    """Every model class of the installed client, read from the client itself (slow: imports it)."""
    import kubernetes.client.models as client_models

    out: ModelTypes = {}
    for name in dir(client_models):
        cls = getattr(client_models, name)
        if isinstance(cls, type) and hasattr(cls, "openapi_types") and hasattr(cls, "attribute_map"):
            out[name] = {cls.attribute_map[attr]: t for attr, t in cls.openapi_types.items()}
    return out


@cache
def model_types() -> ModelTypes:
    """The table for the installed client: the shipped one when its version matches."""
    try:
        table = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        table = {}
    if table.get("kubernetes") == client_version():
        models: ModelTypes = table["models"]
        return models
    return from_client()


def parse_type(text: str) -> FieldType:
    text = text.strip()
    m = _LIST.match(text)
    if m:
        return FieldType("list", item=parse_type(m.group(1)))
    m = _DICT.match(text)
    if m:
        return FieldType("dict", item=parse_type(m.group(1) or m.group(2)))
    if text in model_types():
        return FieldType("model", name=text)
    return FieldType("scalar", name=text)


@cache
def fields(model: str) -> dict[str, FieldType]:
    """JSON field name → type of one model class."""
    return {json_name: parse_type(t) for json_name, t in model_types()[model].items()}


def model_for(res: Resource) -> str | None:
    """The model class name of a resource's kind, or None if the client lacks it."""
    return model_for_kind(res.api_version, res.kind)


def model_for_kind(api_version: str, kind: str) -> str | None:
    version = api_version.rsplit("/", 1)[-1]
    name = _MODEL_NAMES.get((api_version, kind), f"{version.capitalize()}{kind}")
    return name if name in model_types() else None


def write_table(path: Path = TABLE) -> None:
    """Writes the table from the installed client (run after the lock changes the client)."""
    table = {"kubernetes": client_version(), "models": from_client()}
    path.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_table()
    print(f"wrote {TABLE} for kubernetes {client_version()}", file=sys.stderr)
