"""Container checks of ``pkg/apis/core/validation`` the kubelet relies on: probe
handlers, ``subPath`` and projected ``items[].path`` (no absolute paths, no ``..``:
a mount may not leave its volume).

Each function appends to a :class:`FieldErrors` with the real field paths and texts.
"""

from __future__ import annotations

import posixpath
from typing import Any

from k8snet.lab.api import strvalidation as sv
from k8snet.lab.api.fielderrors import FieldErrors

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_PROBE_COUNTS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")


def validate_port_num_or_name(errs: FieldErrors, path: str, value: Any) -> None:
    """ValidatePortNumOrName: an integer 1-65535 or an IANA service name."""
    if isinstance(value, int) and not isinstance(value, bool):
        errs.each_invalid(path, value, sv.is_valid_port_num(value))
    elif isinstance(value, str) and value:
        errs.each_invalid(path, value, sv.is_valid_port_name(value))
    else:
        errs.required(path)


def _validate_handler(errs: FieldErrors, path: str, probe: dict[str, Any]) -> None:
    present = [h for h in _HANDLERS if probe.get(h) is not None]
    if not present:
        errs.required(path, "must specify a handler type")
        return
    for extra in present[1:]:
        errs.forbidden(f"{path}.{extra}", "may not specify more than 1 handler type")
    kind, handler = present[0], probe[present[0]]
    if not isinstance(handler, dict):
        errs.invalid(f"{path}.{kind}", handler, "must be an object")
    elif kind == "exec":
        if not handler.get("command"):
            errs.required(f"{path}.exec.command")
    elif kind == "grpc":
        port = handler.get("port")
        errs.each_invalid(f"{path}.grpc.port", port, sv.is_valid_port_num(port) if isinstance(port, int) else
                          [sv.inclusive_range_error(1, 65535)])
    else:
        validate_port_num_or_name(errs, f"{path}.{kind}.port", handler.get("port"))
        if kind == "httpGet" and handler.get("scheme") not in (None, "HTTP", "HTTPS"):
            errs.not_supported(f"{path}.httpGet.scheme", handler["scheme"], ("HTTP", "HTTPS"))


def validate_probes(errs: FieldErrors, path: str, container: dict[str, Any]) -> None:
    for name in PROBES:
        probe = container.get(name)
        if probe is None:
            continue
        ppath = f"{path}.{name}"
        if not isinstance(probe, dict):
            errs.invalid(ppath, probe, "must be an object")
            continue
        _validate_handler(errs, ppath, probe)
        for field in _PROBE_COUNTS:
            value = probe.get(field)
            if isinstance(value, int) and value < 0:
                errs.invalid(f"{ppath}.{field}", value, "must be greater than or equal to 0")
        if name != "readinessProbe" and probe.get("successThreshold") not in (None, 1):
            errs.invalid(f"{ppath}.successThreshold", probe["successThreshold"], "must be 1")


def validate_local_descending_path(errs: FieldErrors, path: str, target: str) -> None:
    """validateLocalDescendingPath: relative, and no ``..`` element."""
    if posixpath.isabs(target):
        errs.invalid(path, target, "must be a relative path")
    if ".." in target.split("/"):
        errs.invalid(path, target, "must not contain '..'")


def validate_sub_path(errs: FieldErrors, path: str, mount: dict[str, Any]) -> None:
    sub_path, expr = mount.get("subPath"), mount.get("subPathExpr")
    if sub_path and expr:
        errs.invalid(f"{path}.subPathExpr", expr, "subPathExpr and subPath are mutually exclusive")
    if isinstance(sub_path, str) and sub_path:
        validate_local_descending_path(errs, f"{path}.subPath", sub_path)
    if isinstance(expr, str) and expr:
        validate_local_descending_path(errs, f"{path}.subPathExpr", expr)


def validate_key_to_paths(errs: FieldErrors, path: str, items: Any) -> None:
    """validateKeyToPath of configMap / secret volumes' ``items``."""
    for i, item in enumerate(items or []):
        ipath = f"{path}.items[{i}]"
        if not isinstance(item, dict):
            continue
        if not item.get("key"):
            errs.required(f"{ipath}.key")
        target = item.get("path")
        if not target:
            errs.required(f"{ipath}.path")
            continue
        validate_local_descending_path(errs, f"{ipath}.path", target)
        if target.startswith(".."):
            errs.invalid(f"{ipath}.path", target, "must not start with '..'")
