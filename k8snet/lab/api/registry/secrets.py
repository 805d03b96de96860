"""Secrets (pkg/registry/core/secret/strategy.go): stringData folded into data,
data keys and size checked, the type immutable, immutable secrets frozen."""

from __future__ import annotations

import base64
import binascii

from ...contracts import Obj
from ...errors import bad_request
from .. import defaults, tables, validation
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("", "v1", "secrets", "secret", "Secret", True)


def default_secret(secret: Obj) -> None:
    defaults.set_default(secret, "type", "Opaque")
    # v1 → internal conversion: stringData wins over data and is never stored.
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.get("data") or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        secret["data"] = data


def decode_secret_data(secret: Obj) -> dict[str, bytes]:
    """Secret ``data`` values are base64 on the wire; garbage is a decode error (400)."""
    out = {}
    kind = secret.get("kind", "Secret")
    for k, v in (secret.get("data") or {}).items():
        if not isinstance(v, str):
            raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: '
                              f"json: cannot unmarshal {type(v).__name__} into Go struct field {kind}.data of type []uint8")
        try:
            out[k] = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: illegal base64 data: {e}') from e
    return out


def _validate_secret(errs: FieldErrors, secret: Obj) -> None:
    validation.validate_data_keys(errs, secret.get("data"), "data")
    data = decode_secret_data(secret)
    if sum(len(v) for v in data.values()) > validation.MAX_SECRET_BYTES:
        errs.too_long("data", validation.MAX_SECRET_BYTES)
    stype = secret.get("type")
    required_keys = {
        "kubernetes.io/tls": ("tls.crt", "tls.key"),
        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
        "kubernetes.io/dockercfg": (".dockercfg",),
        "kubernetes.io/basic-auth": (),
        "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    }.get(stype or "", ())
    for k in required_keys:
        if k not in data:
            errs.required(f"data[{k}]")


def _validate_secret_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    if new.get("type") != old.get("type"):
        errs.immutable("type", new.get("type"))
    validation.validate_immutable_data(errs, new, old)


class SecretStrategy(Strategy):
    table = Printing(tables.SECRET_COLUMNS, tables.print_secret)

    def default(self, obj: Obj) -> None:
        default_secret(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_secret(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        _validate_secret_update(errs, new, old)


STRATEGY = SecretStrategy(RESOURCE)
