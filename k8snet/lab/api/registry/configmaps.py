"""ConfigMaps (pkg/registry/core/configmap/strategy.go): keys and size checked,
immutable config maps frozen."""

from __future__ import annotations

from ...contracts import Obj
from .. import tables, validation
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",))


def _validate_configmap(errs: FieldErrors, cm: Obj) -> None:
    size = validation.validate_data_keys(errs, cm.get("data"), "data")
    validation.validate_data_keys(errs, cm.get("binaryData"), "binaryData")
    for k in (cm.get("binaryData") or {}):
        if k in (cm.get("data") or {}):
            errs.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
    if size > validation.MAX_SECRET_BYTES:
        errs.too_long("", validation.MAX_SECRET_BYTES)


class ConfigMapStrategy(Strategy):
    table = Printing(tables.CONFIG_MAP_COLUMNS, tables.print_config_map)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_configmap(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        validation.validate_immutable_data(errs, new, old)


STRATEGY = ConfigMapStrategy(RESOURCE)
