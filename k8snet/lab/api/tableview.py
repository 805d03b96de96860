"""A ``meta.k8s.io/v1`` Table of objects, the kind's columns and rows from its strategy
(kube-apiserver's rest.TableConvertor). Apart from ``tables``, which holds the printers:
the registry's kinds use those, and this module uses the registry.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

from ..contracts import Obj
from ..errors import bad_request
from .apiresource import Resource
from .registry import strategy_for
from .tables import Printer, object_meta
from .tables import column_definitions as _definitions


def _printing(res: Resource) -> tuple[list[Obj], Printer]:
    """The kind's columns and row printer, from its strategy (rest.TableConvertor)."""
    strategy = strategy_for(res.key)
    return strategy.table.columns, strategy.table.printer


def column_definitions(res: Resource) -> list[Obj]:
    """The resource's Table columns (a fresh copy of the constant definitions)."""
    return _definitions(_printing(res)[0])


def _row_object(res: Resource, obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    # PartialObjectMetadata: what kubectl reads for -A, --show-labels and -L.
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object_meta(obj)}


def to_table(res: Resource, objects: list[Obj], *, resource_version: str, include_object: str = "Metadata",
             with_headers: bool = True, now: datetime | None = None) -> Obj:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (one row each, in order).

    ``include_object`` is the ``includeObject`` query parameter: ``Metadata``
    (default), ``Object`` or ``None``. ``with_headers=False`` leaves the column
    definitions out, as the server does for every watch event after the first.
    """
    if include_object not in ("Metadata", "Object", "None"):
        raise bad_request(f'unrecognized includeObject value: "{include_object}"')
    columns, printer = _printing(res)
    now = now or datetime.now(timezone.utc)
    rows = []
    for obj in objects:
        cells, conditions = printer(obj, now)
        row: Obj = {"cells": cells, "object": _row_object(res, obj, include_object)}
        if conditions:
            row["conditions"] = copy.deepcopy(conditions)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": _definitions(columns) if with_headers else [],
        "rows": rows,
    }
